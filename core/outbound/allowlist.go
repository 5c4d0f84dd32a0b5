package outbound

import (
	"fmt"
	"net/netip"
	"strings"
)

// This file reads the operator's allow-list of internal destinations.

// AllowList is the operator's list of internal destinations tenant configuration may reach
// anyway. The zero value allows none.
type AllowList struct {
	prefixes []netip.Prefix
	names    []string // exact, lower case
	suffixes []string // ".example.internal" for *.example.internal
	entries  []string
}

// ParseAllowList reads a comma- or space-separated list: CIDRs (10.20.0.0/16), addresses
// (127.0.0.1, ::1), host names (idp.corp.internal) and *.suffix patterns (*.corp.internal,
// which matches names under corp.internal but not corp.internal itself).
func ParseAllowList(s string) (AllowList, error) {
	var a AllowList
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if err := a.add(e); err != nil {
			return AllowList{}, err
		}
	}
	return a, nil
}

// MustParseAllowList is ParseAllowList for lists known to be valid, such as tests'.
func MustParseAllowList(s string) AllowList {
	a, err := ParseAllowList(s)
	if err != nil {
		panic(err)
	}
	return a
}

func (a *AllowList) add(e string) error {
	a.entries = append(a.entries, e)
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("outbound allow-list entry %q is not a CIDR such as 10.20.0.0/16: %w", e, err)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(e), ".")
	suffix, wildcard := strings.CutPrefix(name, "*.")
	if !validName(suffix) {
		return fmt.Errorf("outbound allow-list entry %q is not a CIDR, an IP address, a host name or a *.suffix pattern", e)
	}
	if wildcard {
		a.suffixes = append(a.suffixes, "."+suffix)
	} else {
		a.names = append(a.names, name)
	}
	return nil
}

// String lists the entries as given.
func (a AllowList) String() string { return strings.Join(a.entries, ",") }

func (a AllowList) allowsName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, n := range a.names {
		if host == n {
			return true
		}
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (a AllowList) allowsAddr(ip netip.Addr) bool {
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
