package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/meridian-sd/meridian/acl"
)

// aclRoutes registers the token API and the replication endpoints.
func (s *Server) aclRoutes(route func(pattern, name string, acc access, h http.HandlerFunc)) {
	route("/v1/acl/tokens", "acl_tokens", aclWrite, s.handleACLTokens)
	route("/v1/acl/tokens/{id}", "acl_token", aclWrite, s.handleACLToken)
	route("/v1/acl/token/self", "acl_token_self", identified, s.handleACLSelf)
	// Consul leaves its replication status open (ACL required: none).
	route("/v1/acl/replication", "acl_replication", openRoute, s.handleACLReplication)
	route(ACLReplicationPath, "federation_acl", operatorRead, s.handleFederationACL)
}

func (s *Server) aclOff(w http.ResponseWriter) bool {
	if s.cfg.ACL == nil {
		writeError(w, http.StatusNotFound, "", "the ACL system is not configured on this gateway")
		return true
	}
	return false
}

// createResponse is the answer of PUT /v1/acl/tokens: the only time the
// secret is shown.
type createResponse struct {
	ID          string     `json:"id"`
	Secret      string     `json:"secret"`
	Description string     `json:"description"`
	Rules       []acl.Rule `json:"rules"`
	CreateIndex uint64     `json:"create_index"`
}

func (s *Server) handleACLTokens(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet, http.MethodPut) || s.aclOff(w) {
		return
	}
	a := s.cfg.ACL
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		t := a.Table()
		views := make([]acl.View, 0, t.Len())
		for _, tok := range t.Tokens() {
			views = append(views, tok.View())
		}
		w.Header().Set("X-Meridian-Index", strconv.FormatUint(t.Version(), 10))
		writeJSON(w, http.StatusOK, views)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	req, err := acl.DecodeTokenRequest(body)
	if err != nil {
		var fe *acl.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Field, fe.Error())
			return
		}
		writeError(w, http.StatusBadRequest, "body", err.Error())
		return
	}
	if !a.IsPrimary() {
		s.forwardToPrimary(w, r, body)
		return
	}
	id, err := newAccessor()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "generating the accessor id: "+err.Error())
		return
	}
	secret, err := newSecret()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "generating the secret: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	tok, err := a.create(ctx, acl.Token{ID: id, SecretHash: acl.HashSecret(secret).String(), Description: req.Description, Rules: req.Rules})
	if err != nil {
		s.cfg.Logger.Warn("creating an ACL token failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "", "the ACL store is unavailable, no token was created; retry later")
		return
	}
	s.cfg.Logger.Info("ACL token created", "accessor", tok.ID, "description", tok.Description, "create_index", tok.CreateIndex)
	writeJSON(w, http.StatusOK, createResponse{ID: tok.ID, Secret: secret, Description: tok.Description, Rules: req.Rules, CreateIndex: tok.CreateIndex})
}

func (s *Server) handleACLToken(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet, http.MethodDelete) || s.aclOff(w) {
		return
	}
	a := s.cfg.ACL
	id := r.PathValue("id")
	if r.Method == http.MethodDelete {
		if !a.IsPrimary() {
			s.forwardToPrimary(w, r, nil)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
		defer cancel()
		ok, err := a.remove(ctx, id)
		if err != nil {
			s.cfg.Logger.Warn("deleting an ACL token failed", "accessor", id, "err", err)
			writeError(w, http.StatusServiceUnavailable, "", "the ACL store is unavailable, nothing was deleted; retry later")
			return
		}
		if !ok {
			writeError(w, http.StatusNotFound, "id", "no ACL token with accessor id "+strconv.Quote(id))
			return
		}
		s.cfg.Logger.Info("ACL token deleted", "accessor", id)
		writeJSON(w, http.StatusOK, map[string]any{"deleted": id})
		return
	}
	e, ok := a.Table().ByID(id)
	if !ok {
		writeError(w, http.StatusNotFound, "id", "no ACL token with accessor id "+strconv.Quote(id))
		return
	}
	writeJSON(w, http.StatusOK, e.Token.View())
}

func (s *Server) handleACLSelf(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.aclOff(w) {
		return
	}
	e, ok := s.cfg.ACL.resolve(r)
	if !ok || e == nil {
		writeError(w, http.StatusUnauthorized, "", msgTokenRequired)
		return
	}
	writeJSON(w, http.StatusOK, e.Token.View())
}

// replicationStatus is GET /v1/acl/replication.
type replicationStatus struct {
	Enabled       bool   `json:"enabled"` // false in the primary region
	DefaultPolicy string `json:"default_policy"`
	Region        string `json:"region"`
	Primary       string `json:"primary"`
	Version       uint64 `json:"version"`
	Tokens        int    `json:"tokens"`
	AgeMS         int64  `json:"age_ms"` // since the last successful fetch; -1 never (0 at the primary)
	Stale         bool   `json:"stale"`
	Source        string `json:"source,omitempty"`
	Failures      int    `json:"failures"`
	LastError     string `json:"last_error,omitempty"`
}

func (s *Server) handleACLReplication(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.aclOff(w) {
		return
	}
	a := s.cfg.ACL
	t := a.Table()
	out := replicationStatus{Region: s.cfg.Region, Primary: a.primary, Version: t.Version(), Tokens: t.Len(), DefaultPolicy: "deny"}
	if a.defaultAllow {
		out.DefaultPolicy = "allow"
	}
	if a.IsPrimary() {
		out.Stale = !a.loaded.Load() && a.rdb != nil
	} else {
		out.Enabled = true
		a.mu.Lock()
		st := a.repl.Status(a.now())
		a.mu.Unlock()
		out.AgeMS, out.Stale, out.Source, out.Failures, out.LastError = st.Age.Milliseconds(), st.Stale, st.Source, st.Failures, st.LastError
		if st.Age < 0 {
			out.AgeMS = -1
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleFederationACL serves the primary's token table (hashes only) to
// other regions' gateways: ?index=V&wait=D blocks until the version
// differs from V.
func (s *Server) handleFederationACL(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) || s.aclOff(w) || !s.requireGateway(w, r, "", "token replication") {
		return
	}
	a := s.cfg.ACL
	if !a.IsPrimary() {
		writeError(w, http.StatusConflict, "", "region "+s.cfg.Region+" is not the ACL primary; ask a gateway of region "+a.primary)
		return
	}
	if a.rdb != nil && !a.loaded.Load() {
		writeError(w, http.StatusServiceUnavailable, "", "the ACL tokens are not loaded from the store yet")
		return
	}
	q := r.URL.Query()
	if v := q.Get("index"); v != "" {
		index, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "index", "must be an ACL table version (an unsigned integer), got "+strconv.Quote(v))
			return
		}
		wait := DefaultWait
		if ws := q.Get("wait"); ws != "" {
			if wait, err = time.ParseDuration(ws); err != nil || wait < 0 {
				writeError(w, http.StatusBadRequest, "wait", "must be a duration such as 30s, got "+strconv.Quote(ws))
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), min(wait, s.cfg.MaxWait))
		stop := context.AfterFunc(s.drain, cancel)
		a.waitChange(ctx, index)
		stop()
		cancel()
	}
	t := a.Table()
	toks := t.Tokens()
	w.Header().Set("X-Meridian-Index", strconv.FormatUint(t.Version(), 10))
	writeJSON(w, http.StatusOK, aclSnapshot{Primary: a.primary, Version: t.Version(), Tokens: toks})
}

// forwardToPrimary relays a token write to a gateway of the primary
// region, with the client's token; the new table comes back through
// replication.
func (s *Server) forwardToPrimary(w http.ResponseWriter, r *http.Request, body []byte) {
	a := s.cfg.ACL
	if s.cfg.Fed == nil {
		writeError(w, http.StatusServiceUnavailable, "", "tokens are written in the primary region "+a.primary+"; federation is off here, so send the request to a gateway of "+a.primary)
		return
	}
	peers := a.primaryPeers(s.cfg.Fed)
	if len(peers) == 0 {
		writeError(w, http.StatusServiceUnavailable, "", "tokens are written in the primary region "+a.primary+" and none of its gateways is reachable; retry later")
		return
	}
	var lastErr error
	for _, p := range peers {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, s.peerScheme()+"://"+p+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			writeError(w, http.StatusInternalServerError, "", err.Error())
			return
		}
		for _, h := range []string{TokenHeader, "Authorization", "Content-Type"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		resp, err := s.fwd.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		defer resp.Body.Close()
		if s.cfg.TLS != nil {
			// Only a gateway of the primary region may answer for it.
			if err := s.cfg.TLS.CheckPeer(p, a.primary, resp.TLS); err != nil {
				lastErr = err
				continue
			}
		}
		for _, h := range []string{"Content-Type", "Retry-After", "X-Meridian-Index"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(resp.Body, 1<<20))
		return
	}
	writeError(w, http.StatusServiceUnavailable, "", "tokens are written in the primary region "+a.primary+"; its gateways are unreachable: "+lastErr.Error())
}
