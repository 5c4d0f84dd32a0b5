// Package httpkit is the core's small HTTP toolkit, shared by every adapter at the HTTP edge
// (the FDI and admin handlers, each factor's endpoints): decoding a JSON body with specific
// errors, answering JSON, the error shape both APIs use, the 500 answer and the 403 st-mfa
// refusal. Nothing below the edge (the MFA engine, the factors' operations, the store)
// imports it.
package httpkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
)

// MaxBodyBytes bounds every request body; larger ones are answered 413.
const MaxBodyBytes = 1 << 20

// errorBody is the error shape of both APIs: FDI's {"message"} and the admin API's
// {"message", "field"}.
type errorBody struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// WriteError answers {"message": ..., "field": ...} with status.
func WriteError(w http.ResponseWriter, status int, field, format string, args ...any) {
	WriteJSON(w, status, errorBody{Message: fmt.Sprintf(format, args...), Field: field})
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

// Decode reads the JSON request body into v, answering 400 or 413 with a specific message
// and returning false when it cannot. Unknown fields are ignored, as SuperTokens does.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool { return decode(w, r, v, false) }

// DecodeStrict is Decode refusing unknown fields (the admin API).
func DecodeStrict(w http.ResponseWriter, r *http.Request, v any) bool { return decode(w, r, v, true) }

// decode reads one JSON value into v; on failure it answers the request and returns false.
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
		WriteError(w, status, field, "%s", msg)
		return false
	}
	return true
}

// InternalError logs err and answers 500 {"status":"GENERAL_ERROR","message":"internal error"}
// without details.
func InternalError(log logr.Logger, w http.ResponseWriter, r *http.Request, err error) {
	log.Error(err, "Failed request", "method", r.Method, "path", r.URL.Path)
	WriteJSON(w, http.StatusInternalServerError, map[string]string{"status": contract.StatusGeneralError, "message": "internal error"})
}

// WriteClaimError answers 403 {"message":"invalid claim","claimValidationErrors":[{"id":"st-mfa",
// "reason":{"message":reason}}]}, as SuperTokens does when the st-mfa claim refuses a request.
func WriteClaimError(w http.ResponseWriter, reason string) {
	WriteJSON(w, http.StatusForbidden, contract.InvalidClaim(contract.MFARefusal(reason, nil)))
}
