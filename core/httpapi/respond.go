package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds every request body; larger ones are answered 413.
const MaxBodyBytes = 1 << 20

// errorBody is the error shape of both APIs: FDI's {"message"} and the admin API's
// {"message", "field"}.
type errorBody struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, field, format string, args ...any) {
	writeJSON(w, status, errorBody{Message: fmt.Sprintf(format, args...), Field: field})
}

// decodeError turns a JSON decoding failure into a status and a message naming the problem.
func decodeError(err error) (status int, field, msg string) {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, "", fmt.Sprintf("request body is larger than %d bytes (1 MiB)", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "", "request body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "", "request body is not valid JSON: it ends too early"
	case errors.As(err, &syntaxErr):
		return http.StatusBadRequest, "", fmt.Sprintf("request body is not valid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		f := typeErr.Field
		if f == "" {
			return http.StatusBadRequest, "", fmt.Sprintf("request body must be a JSON object, not %s", typeErr.Value)
		}
		return http.StatusBadRequest, f, fmt.Sprintf("%s must be %s, not %s", f, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return http.StatusBadRequest, name, fmt.Sprintf("unknown field %q", name)
	}
	return http.StatusBadRequest, "", "request body is not valid: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	case "int", "int64", "int32", "uint8", "uint32", "float64":
		return "a number"
	}
	return "a " + goKind
}

// decode reads one JSON value into v; on failure it answers the request and returns false.
// strict refuses unknown fields (the admin API); FDI ignores them like SuperTokens does.
func decode(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, tokErr := dec.Token(); tokErr != io.EOF {
			err = errors.New("trailing data after the JSON value")
			var maxErr *http.MaxBytesError
			if errors.As(tokErr, &maxErr) {
				err = tokErr
			}
		}
	}
	if err != nil {
		status, field, msg := decodeError(err)
		writeError(w, status, field, "%s", msg)
		return false
	}
	return true
}
