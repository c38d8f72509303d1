// Command benchplot draws how benchmarks grow with a size parameter: it
// reads `go test -bench` output on stdin, takes every benchmark whose
// name holds the parameter (records=N by default), and writes an SVG
// chart of ns/op against N on log-log axes, one line per benchmark with
// the parameter taken out of its name.
//
//	go test -run '^$' -bench Clinic ./keyshare | go run ./internal/cmd/benchplot -o docs/bench-policy.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type point struct{ x, y float64 }

func main() {
	out := flag.String("o", "-", "SVG file to write (- for stdout)")
	param := flag.String("param", "records", "the size parameter in benchmark names (NAME=N)")
	title := flag.String("title", "Access-policy costs against repo size", "chart title")
	flag.Parse()
	series, err := parse(os.Stdin, *param)
	if err != nil {
		slog.Error("benchplot: read benchmarks", "err", err)
		os.Exit(1)
	}
	if len(series) == 0 {
		slog.Error("benchplot: no benchmark names hold " + *param + "=N")
		os.Exit(1)
	}
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			slog.Error("benchplot", "err", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	if err := draw(w, *title, *param, series); err != nil {
		slog.Error("benchplot: write", "err", err)
		os.Exit(1)
	}
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// parse collects ns/op per series name and size.
func parse(r io.Reader, param string) (map[string][]point, error) {
	sizeRe := regexp.MustCompile(regexp.QuoteMeta(param) + `=(\d+)`)
	series := map[string][]point{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		sm := sizeRe.FindStringSubmatch(name)
		if sm == nil {
			continue
		}
		x, _ := strconv.ParseFloat(sm[1], 64)
		y, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		key := strings.Trim(strings.ReplaceAll(sizeRe.ReplaceAllString(name, ""), "//", "/"), "/")
		series[key] = append(series[key], point{x, y})
	}
	for k := range series {
		sort.Slice(series[k], func(i, j int) bool { return series[k][i].x < series[k][j].x })
	}
	return series, sc.Err()
}

// draw writes the chart.
func draw(w io.Writer, title, param string, series map[string][]point) error {
	const width, height, left, right, top, bottom = 900.0, 520.0, 80.0, 330.0, 40.0, 60.0
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, ps := range series {
		for _, p := range ps {
			minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
			minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
		}
	}
	lx0, lx1 := math.Floor(math.Log10(minX)), math.Ceil(math.Log10(maxX))
	ly0, ly1 := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if lx1 == lx0 {
		lx1++
	}
	if ly1 == ly0 {
		ly1++
	}
	px := func(x float64) float64 { return left + (math.Log10(x)-lx0)/(lx1-lx0)*(width-left-right) }
	py := func(y float64) float64 { return height - bottom - (math.Log10(y)-ly0)/(ly1-ly0)*(height-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%g" y="22" font-size="15">%s</text>`+"\n", left, esc(title))
	for e := lx0; e <= lx1; e++ {
		x := px(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/><text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, top, x, height-bottom, x, height-bottom+18, human(math.Pow(10, e)))
	}
	for e := ly0; e <= ly1; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left, y, width-right, y, left-6, y+4, duration(math.Pow(10, e)))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s (log)</text>`+"\n", (left+width-right)/2, height-18, esc(param))
	fmt.Fprintf(&b, `<text x="18" y="%g" transform="rotate(-90 18 %g)" text-anchor="middle">time per operation (log)</text>`+"\n", (top+height-bottom)/2, (top+height-bottom)/2)
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	sort.Strings(names)
	colors := []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"}
	for i, k := range names {
		c := colors[i%len(colors)]
		var pts []string
		for _, p := range series[k] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(p.x), py(p.y), c)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/><text x="%g" y="%g">%s</text>`+"\n", width-right+15, ly, width-right+35, ly, c, width-right+40, ly+4, esc(k))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func duration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%gs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%gms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%gµs", ns/1e3)
	}
	return fmt.Sprintf("%gns", ns)
}
