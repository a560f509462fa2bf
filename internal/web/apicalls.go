package web

import (
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/events"
)

// createAPICall is POST /api/v1/api-calls: an integrator service reports a Tensfer call, so its
// request_id is findable and its errors count in the error signals. 201 when stored.
func (s *Server) createAPICall(w http.ResponseWriter, r *http.Request) error {
	var in events.APICall
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	res, err := s.events.RecordAPICall(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"id": itoa(res.ID), "request_id": requestIDFrom(r.Context())})
}
