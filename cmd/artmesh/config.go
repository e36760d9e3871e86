package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The names by which the CLI finds its node (README.md, "The CLI's conventions").
const (
	envRepo   = "ARTMESH_PATH"    // the node's repo folder
	envAPI    = "ARTMESH_API"     // the API base URL
	envAPIKey = "ARTMESH_API_KEY" // the API key to call with

	configFile  = "config.json" // <repo>/config.json, whose api_addr is where the API listens
	apiKeyFile  = "api.key"     // <repo>/api.key, the admin agent's key written by init
	apiAddrFile = "api.addr"    // <repo>/api.addr, where a running daemon really listens

	defaultAPIURL = "http://127.0.0.1:7480"
)

// repoDir returns the node's repo folder: $ARTMESH_PATH, else ~/.artmesh.
func repoDir(getenv func(string) string) string {
	if p := getenv(envRepo); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".artmesh"
	}
	return filepath.Join(home, ".artmesh")
}

// apiURL finds the API base URL: the --api flag, else $ARTMESH_API, else
// where the repo's running daemon says it listens (<repo>/api.addr, which
// the daemon writes at start and removes at stop, so that a node started on
// another port is still found), else http:// and the api_addr of
// <repo>/config.json, else http://127.0.0.1:7480.
func apiURL(flag string, getenv func(string) string, repo string) (string, error) {
	if flag != "" {
		u, err := normalizeURL(flag)
		if err != nil {
			return "", fmt.Errorf("--api: %w", err)
		}
		return u, nil
	}
	if v := getenv(envAPI); v != "" {
		u, err := normalizeURL(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", envAPI, err)
		}
		return u, nil
	}
	if data, err := os.ReadFile(filepath.Join(repo, apiAddrFile)); err == nil {
		if addr := strings.TrimSpace(string(data)); addr != "" {
			return addrURL(addr), nil
		}
	}
	path := filepath.Join(repo, configFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return defaultAPIURL, nil
	case err != nil:
		return "", fmt.Errorf("reading the node's config: %w", err)
	}
	var cfg struct {
		APIAddr string `json:"api_addr"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	if cfg.APIAddr == "" {
		return defaultAPIURL, nil
	}
	return addrURL(cfg.APIAddr), nil
}

// normalizeURL checks an API base URL given by a person; a bare host:port
// means http.
func normalizeURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		return addrURL(s), nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an API URL such as http://127.0.0.1:7480", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// addrURL turns a listen address (host:port) into a URL to call: an
// empty or unspecified host (":7480", "0.0.0.0:7480", "[::]:7480") means
// this machine.
func addrURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// errNoKey says that no API key could be found.
var errNoKey = errors.New("no API key: run `artmesh init` or set " + envAPIKey)

// apiKey finds the API key: $ARTMESH_API_KEY, else the contents of
// <repo>/api.key (trimmed). It also says where the key came from.
func apiKey(getenv func(string) string, repo string) (key, source string, err error) {
	if k := strings.TrimSpace(getenv(envAPIKey)); k != "" {
		return k, envAPIKey, nil
	}
	path := filepath.Join(repo, apiKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("%w (there is no %s)", errNoKey, path)
	}
	if err != nil {
		return "", "", fmt.Errorf("reading the API key: %w", err)
	}
	key = strings.TrimSpace(string(data))
	if key == "" {
		return "", "", fmt.Errorf("%w (%s is empty)", errNoKey, path)
	}
	return key, path, nil
}
