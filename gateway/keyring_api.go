package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

// KeyringResponse is one gossip pool's answer on /v1/operator/keyring, in
// Consul's shape: the API answers a list with one entry per pool (Meridian
// has one, the WAN pool of all gateways). Keys and PrimaryKeys count, per
// base64 key, the gateways holding it; Messages holds what gateways said,
// by node name.
type KeyringResponse struct {
	WAN         bool
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
	NumResp     int
	NumErr      int
	Messages    map[string]string
}

// KeyringRequest is the body of POST (install), PUT (use: make primary)
// and DELETE (remove) on /v1/operator/keyring.
type KeyringRequest struct {
	Key string
}

// keyringError is the error body of a keyring operation that some
// gateways failed: the message, plus what each gateway said.
type keyringError struct {
	Error    string            `json:"error"`
	Field    string            `json:"field,omitempty"`
	Messages map[string]string `json:"messages,omitempty"`
	NumNodes int               `json:"num_nodes"`
	NumResp  int               `json:"num_resp"`
	NumErr   int               `json:"num_err"`
}

// handleKeyring is /v1/operator/keyring: GET lists the pool's keys, POST
// installs a key on every gateway, PUT makes it the primary key
// everywhere, DELETE removes it everywhere (Serf's key manager; the
// keyring files follow). Authorization: GET needs operator read, the
// others operator write.
func (s *Server) handleKeyring(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete) {
		return
	}
	km := s.cfg.Keyring
	if km == nil {
		writeError(w, http.StatusNotFound, "", "federation is off: this gateway has no gossip pool (no --serf-bind)")
		return
	}
	if !km.EncryptionEnabled() {
		writeError(w, http.StatusBadRequest, "", "gossip encryption is off: start the gateways with --encrypt KEY (or --keyring-file) to use the keyring")
		return
	}
	var (
		resp serfmember.KeyringResponse
		err  error
	)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		resp, err = km.ListKeys()
	} else {
		body, rerr := readBody(w, r)
		if rerr != nil {
			writeStoreError(w, rerr)
			return
		}
		var req KeyringRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "body", `want a JSON object {"Key": "<base64 key>"}`)
			return
		}
		if _, err := serfmember.ParseKey(req.Key); err != nil {
			writeError(w, http.StatusBadRequest, "Key", "Key: "+err.Error())
			return
		}
		switch r.Method {
		case http.MethodPost:
			resp, err = km.InstallKey(req.Key)
		case http.MethodPut:
			resp, err = km.UseKey(req.Key)
		case http.MethodDelete:
			resp, err = km.RemoveKey(req.Key)
		}
	}
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, serfmember.ErrEncryptionOff):
			code = http.StatusBadRequest
		case errors.Is(err, serfmember.ErrKeyNotInstalled):
			code = http.StatusNotFound
		case errors.Is(err, serfmember.ErrPrimaryKey):
			code = http.StatusConflict
		case errors.Is(err, serfmember.ErrKeyringIncomplete):
			code = http.StatusBadGateway
		}
		writeJSON(w, code, keyringError{Error: err.Error(), Messages: resp.Messages,
			NumNodes: resp.NumNodes, NumResp: resp.NumResp, NumErr: resp.NumErr})
		return
	}
	writeJSON(w, http.StatusOK, []KeyringResponse{{WAN: true, Keys: resp.Keys, PrimaryKeys: resp.PrimaryKeys,
		NumNodes: resp.NumNodes, NumResp: resp.NumResp, NumErr: resp.NumErr, Messages: resp.Messages}})
}

// loadKeyring resolves --encrypt and --keyring-file and says at startup
// whether gossip is encrypted (never the key).
func loadKeyring(encrypt, file string, log *slog.Logger) (serfmember.LoadedKeyring, error) {
	kr, err := serfmember.LoadKeyring(encrypt, file)
	if err != nil {
		return kr, err
	}
	switch kr.Source {
	case serfmember.KeyringOff:
		log.Info("gossip encryption is off: any process that reaches the gossip port can join the pool (set --encrypt)", "component", "serf")
	default:
		args := []any{"component", "serf", "keys", len(kr.Keys), "source", kr.Source.String()}
		if file != "" {
			args = append(args, "keyring_file", file)
		}
		log.Info("gossip encryption is on", args...)
	}
	if kr.EncryptIgnored {
		log.Warn("--encrypt ignored: the keyring file exists and does not hold that key; the file's keys are used", "component", "serf", "keyring_file", file)
	}
	return kr, nil
}
