package access

import (
	"encoding/json"
	"net/http"
)

// errorBody is the API's error answer: {"code","message"}.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the API's JSON error answer with status, code and msg.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code, Message: msg})
}
