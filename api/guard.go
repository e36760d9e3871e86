package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/artmesh/artmesh"
)

// maxQueryParams is how many parameters one query string may have: room
// for every filter of a listing (artmesh.MaxMetaFilters of them and the
// others), far below Go's own limit of 10,000, past which its parser
// returns nothing at all.
const maxQueryParams = 2 * artmesh.MaxMetaFilters

// checkRequest refuses, before any route runs, a request that is not
// addressed to this node's API (hostAllowed) and a query string that does
// not parse or has too many parameters, which Go's parser would silently
// cut short.
func (s *Server) checkRequest(r *http.Request) error {
	if api := s.n.APIURL(); !hostAllowed(r.Host, r.TLS != nil, api) {
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("Host %q is not this node's API address: use %s, or a loopback name with its port", r.Host, tokenBaseURL(api)))
	}
	_, err := parseQuery(r.URL.RawQuery)
	return err
}

// parseQuery parses a query string, refusing one that is malformed (a bad
// escape, a semicolon) or has more than maxQueryParams parameters.
func parseQuery(raw string) (url.Values, error) {
	if raw == "" {
		return url.Values{}, nil
	}
	if n := strings.Count(raw, "&") + 1; n > maxQueryParams {
		return nil, artmesh.E(artmesh.Invalid, fmt.Sprintf("the query has %d parameters; at most %d are allowed", n, maxQueryParams))
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, artmesh.E(artmesh.Invalid, "the query string is malformed: "+err.Error())
	}
	return q, nil
}

// hostAllowed reports whether a request's Host names this node's API,
// whose base URL is apiURL. A browser tricked by DNS rebinding sends the
// attacker's name as Host, so only these are accepted, each with the API's
// port: the API's own host; "localhost" and loopback addresses; and, when
// the API listens on every interface (0.0.0.0, ::), any IP address, since
// rebinding needs a name.
func hostAllowed(host string, tls bool, apiURL string) bool {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return false
	}
	apiHost, apiPort, ok := hostPort(u.Host, defaultPort(u.Scheme == "https"))
	if !ok {
		return false
	}
	h, port, ok := hostPort(host, defaultPort(tls))
	if !ok || port != apiPort {
		return false
	}
	if h == apiHost || h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	apiIP, err := netip.ParseAddr(apiHost)
	if err != nil {
		return false
	}
	return apiIP.IsUnspecified() || ip == apiIP.Unmap()
}

func defaultPort(tls bool) string {
	if tls {
		return "443"
	}
	return "80"
}

// hostPort splits a Host value into its host, lower case and without the
// brackets of an IPv6 address, and its port, defPort when it names none.
func hostPort(hostport, defPort string) (host, port string, ok bool) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: a name, an IPv4 address or a bracketed IPv6 address.
		host, port = hostport, defPort
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		} else if strings.ContainsAny(host, ":[]") {
			return "", "", false
		}
	}
	if host == "" {
		return "", "", false
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", "", false
	}
	return strings.ToLower(host), port, true
}
