package observability_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// selector is a metric an expression selects, with the label names its matchers name.
type selector struct {
	name   string
	labels []string
}

// promqlWords are PromQL's keywords, aggregation operators and the names that may stand
// before a label list; an identifier among them is never a metric name.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true, "group": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "limitk": true, "limit_ratio": true,
}

// labelLists are the keywords followed by a parenthesised list of label names, not an
// expression.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// selectors returns the metrics a PromQL expression selects: every identifier that is not a
// function call, a keyword or an aggregation operator, outside strings, label lists, range
// and subquery brackets, with the label names of the {...} that follows it. It is a lexer,
// not a parser: enough for the expressions of the chart's dashboard and rules, and it fails
// on what it does not understand rather than guess.
func selectors(expr string) ([]selector, error) {
	var out []selector
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	closing := func(i int, open, close byte) (int, error) { // index after the bracket closing expr[i]
		depth := 0
		for j := i; j < len(expr); j++ {
			switch expr[j] {
			case '"', '\'', '`':
				end := strings.IndexByte(expr[j+1:], expr[j])
				if end < 0 {
					return 0, fmt.Errorf("unterminated string at %d in %q", j, expr)
				}
				j += end + 1
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d in %q", open, i, expr)
	}
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d in %q", i, expr)
			}
			i++
		case strings.ContainsRune(" \t\r\n+-*/%^,<>=!", rune(c)):
			i++
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(expr[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string at %d in %q", i, expr)
			}
			i += end + 2
		case c == '[':
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			return nil, fmt.Errorf("a selector without a metric name at %d in %q: name the metric", i, expr)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case c == '$': // a Grafana variable
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word, next := expr[i:j], skipSpace(j)
			switch {
			case labelLists[word]:
				if next >= len(expr) || expr[next] != '(' {
					return nil, fmt.Errorf("%s without a label list in %q", word, expr)
				}
				end, err := closing(next, '(', ')')
				if err != nil {
					return nil, err
				}
				i = end
			case promqlWords[word] || next < len(expr) && expr[next] == '(':
				i = j // a keyword, an operator or a function
			default:
				s := selector{name: word}
				i = j
				if next < len(expr) && expr[next] == '{' {
					end, err := closing(next, '{', '}')
					if err != nil {
						return nil, err
					}
					for _, m := range strings.Split(expr[next+1:end-1], ",") {
						if m = strings.TrimSpace(m); m == "" {
							continue
						}
						k := strings.IndexAny(m, "=!")
						if k <= 0 {
							return nil, fmt.Errorf("label matcher %q in %q", m, expr)
						}
						s.labels = append(s.labels, strings.TrimSpace(m[:k]))
					}
					i = end
				}
				out = append(out, s)
			}
		default:
			return nil, fmt.Errorf("unexpected %q at %d in %q", c, i, expr)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return out, nil
}

// exposed is what the scraped /metrics endpoints expose: each sample name with the label
// names its samples carry.
type exposed map[string]map[string]bool

// missing checks the selectors of the named expressions against what is exposed and returns
// one line for each metric that does not exist and each matcher on a label the metric does
// not have.
func missing(exprs map[string]string, have exposed) ([]string, error) {
	var out []string
	for where, expr := range exprs {
		sels, err := selectors(expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(sels) == 0 {
			out = append(out, fmt.Sprintf("%s names no metric: %s", where, expr))
		}
		for _, s := range sels {
			labels, ok := have[s.name]
			if !ok {
				out = append(out, fmt.Sprintf("%s names %s, which no core, sidecar or manager exposes", where, s.name))
				continue
			}
			for _, l := range s.labels {
				if !labels[l] {
					out = append(out, fmt.Sprintf("%s matches label %q of %s, which has labels %v", where, l, s.name, sortedKeys(labels)))
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSelectorsFindTheMetricsOfAnExpression(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{name: "a bare metric is selected", expr: "twofold_core_ready", want: []string{"twofold_core_ready"}},
		{name: "functions, aggregations and label lists are not metrics",
			expr: `sum by (factor, outcome) (rate(twofold_core_authentications_total{outcome!="success"}[$__rate_interval]))`,
			want: []string{"twofold_core_authentications_total{outcome}"}},
		{name: "both sides of a binary operation are selected and numbers are not",
			expr: `sum(rate(a_total{x="1", y=~"b|c"}[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0.5 and on (pod) c == 0`,
			want: []string{"a_total{x,y}", "b_total", "c"}},
		{name: "strings holding braces or metric-like words are skipped",
			expr: `count(up_total{job="x{y}", re=~"sum(z)"}) or vector(0)`, want: []string{"up_total{job,re}"}},
		{name: "time() and a histogram bucket are told apart",
			expr: `time() - histogram_quantile(0.99, sum by (le) (rate(d_seconds_bucket[1m] offset 1h)))`, want: []string{"d_seconds_bucket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sels, err := selectors(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range sels {
				g := s.name
				if len(s.labels) > 0 {
					g += "{" + strings.Join(s.labels, ",") + "}"
				}
				got = append(got, g)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("selectors(%s) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestSelectorsRefuseWhatTheyCannotRead(t *testing.T) {
	for _, expr := range []string{`{__name__="x"}`, `sum(rate(x[5m])`, `x{y="z`, `sum by x`} {
		if _, err := selectors(expr); err == nil {
			t.Errorf("selectors(%s) succeeded, want an error", expr)
		}
	}
}

func TestAMisspeltMetricOrLabelIsReported(t *testing.T) {
	have := exposed{"twofold_core_authentications_total": {"factor": true, "outcome": true}}
	got, err := missing(map[string]string{
		"panel A": `sum(rate(twofold_core_authentication_total[5m]))`,
		"panel B": `sum(rate(twofold_core_authentications_total{outcom="success"}[5m]))`,
		"panel C": `sum(rate(twofold_core_authentications_total{outcome="success"}[5m]))`,
	}, have)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"panel A names twofold_core_authentication_total, which no core, sidecar or manager exposes",
		`panel B matches label "outcom" of twofold_core_authentications_total, which has labels [factor outcome]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("missing = %q, want %q", got, want)
	}
}
