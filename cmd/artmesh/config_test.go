package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf returns a getenv over a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestAPIURL(t *testing.T) {
	tests := []struct {
		name    string
		flag    string
		env     map[string]string
		files   map[string]string // repo file name to contents
		want    string
		wantErr bool
	}{
		{"default", "", nil, nil, "http://127.0.0.1:7480", false},
		{"flag wins", "http://h:1/", map[string]string{envAPI: "http://e:2"}, map[string]string{apiAddrFile: "127.0.0.1:3"}, "http://h:1", false},
		{"flag host:port", "localhost:9", nil, nil, "http://localhost:9", false},
		{"env", "", map[string]string{envAPI: "https://e:2"}, map[string]string{configFile: `{"api_addr":"127.0.0.1:4"}`}, "https://e:2", false},
		{"running daemon's address", "", nil, map[string]string{apiAddrFile: "127.0.0.1:39999\n", configFile: `{"api_addr":"127.0.0.1:0"}`}, "http://127.0.0.1:39999", false},
		{"config", "", nil, map[string]string{configFile: `{"api_addr":"127.0.0.1:7000","peer_id":"x"}`}, "http://127.0.0.1:7000", false},
		{"config any host", "", nil, map[string]string{configFile: `{"api_addr":"0.0.0.0:7001"}`}, "http://127.0.0.1:7001", false},
		{"config no host", "", nil, map[string]string{configFile: `{"api_addr":":7002"}`}, "http://127.0.0.1:7002", false},
		{"config ipv6 any", "", nil, map[string]string{configFile: `{"api_addr":"[::]:7003"}`}, "http://[::1]:7003", false},
		{"config without api_addr", "", nil, map[string]string{configFile: `{}`}, "http://127.0.0.1:7480", false},
		{"empty api.addr is ignored", "", nil, map[string]string{apiAddrFile: "\n"}, "http://127.0.0.1:7480", false},
		{"broken config", "", nil, map[string]string{configFile: `{`}, "", true},
		{"bad env URL", "", map[string]string{envAPI: "ftp://x"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(repo, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := apiURL(tt.flag, envOf(tt.env), repo)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("apiURL = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		file    *string // contents of api.key; nil for none
		want    string
		wantErr error
	}{
		{"env wins", map[string]string{envAPIKey: " k-env \n"}, ptr("k-file"), "k-env", nil},
		{"file trimmed", nil, ptr("k-file\n"), "k-file", nil},
		{"no key", nil, nil, "", errNoKey},
		{"empty file", nil, ptr(" \n"), "", errNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			if tt.file != nil {
				if err := os.WriteFile(filepath.Join(repo, apiKeyFile), []byte(*tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, _, err := apiKey(envOf(tt.env), repo)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("apiKey = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "artmesh init") {
				t.Errorf("%q does not say what to do", err)
			}
		})
	}
}

func TestRepoDir(t *testing.T) {
	if got := repoDir(envOf(map[string]string{envRepo: "/x/y"})); got != "/x/y" {
		t.Errorf("repoDir = %q", got)
	}
	home, err := os.UserHomeDir()
	if err == nil {
		if got := repoDir(envOf(nil)); got != filepath.Join(home, ".artmesh") {
			t.Errorf("repoDir = %q", got)
		}
	}
}

func ptr(s string) *string { return &s }
