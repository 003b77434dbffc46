package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSplitVersion(t *testing.T) {
	for in, want := range map[string][3]int{
		"1.2.3": {1, 2, 3}, "v0.9.12-3-gabc": {0, 9, 12}, "dev": {0, 0, 0}, "7": {7, 0, 0}, "": {0, 0, 0},
	} {
		a, b, c := splitVersion(in)
		if got := [3]int{a, b, c}; got != want {
			t.Errorf("splitVersion(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestPaging(t *testing.T) {
	items := []int{0, 1, 2, 3, 4}
	for q, want := range map[string][]int{
		"":                  {0, 1, 2, 3, 4},
		"?start=1&count=2":  {1, 2},
		"?start=4&count=10": {4},
		"?start=9":          {},
		"?start=-3&count=1": {0},
		"?count=0":          {0, 1, 2, 3, 4},
		"?count=x":          {0, 1, 2, 3, 4},
	} {
		start, count := page(httptest.NewRequest("GET", "/api/v1/clients"+q, nil))
		got := window(items, start, count)
		if len(got) != len(want) {
			t.Errorf("%q: %v, want %v", q, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %v, want %v", q, got, want)
			}
		}
	}
}

func TestBasicAuth(t *testing.T) {
	a := &API{}
	creds := "ops:pw"
	a.auth.Store(&creds)
	h := a.authorized(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		user, pass string
		set        bool
		want       int
	}{
		{"", "", false, http.StatusUnauthorized},
		{"ops", "nope", true, http.StatusUnauthorized},
		{"ops", "pw", true, http.StatusNoContent},
		{"ops:pw", "", true, http.StatusUnauthorized},
	} {
		r := httptest.NewRequest("GET", "/api/v1/streams", nil)
		if c.set {
			r.SetBasicAuth(c.user, c.pass)
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != c.want {
			t.Errorf("%q/%q: %d, want %d", c.user, c.pass, w.Code, c.want)
		}
	}
	none := ""
	a.auth.Store(&none)
	w := httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("no auth configured: %d", w.Code)
	}
}
