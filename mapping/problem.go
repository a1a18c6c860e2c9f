package mapping

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// A Problem is one thing wrong in a mapping file, placed where an editor can
// show it.
type Problem struct {
	File string `json:"file"` // the file's name, as given to Load
	// Line is 1-based; 0 means the problem concerns the whole file.
	Line int `json:"line,omitempty"`
	// Col is 1-based and counts characters, not bytes; 0 means the
	// problem concerns the whole line.
	Col int `json:"col,omitempty"`
	// Msg says what is wrong, in plain words.
	Msg string `json:"msg"`
	// Text is the line of the file the problem is on, as written.
	Text string `json:"text,omitempty"`
}

// Error returns the problem as "file:line:col: msg", followed, when the
// problem has a place, by the offending line and a caret under the column.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Text != "" {
		b.WriteString("\n\t")
		b.WriteString(strings.ReplaceAll(p.Text, "\t", " "))
		if p.Col > 0 {
			b.WriteString("\n\t")
			b.WriteString(strings.Repeat(" ", p.Col-1))
			b.WriteByte('^')
		}
	}
	return b.String()
}

// Problems is every problem Load found, in file order and then in the order
// of their places in each file. It is the error Load and LoadDir return.
type Problems []Problem

// Error lists every problem, one after the other.
func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

// sortByPlace sorts ps by the order of the files, then by line and column,
// and drops exact duplicates.
func (ps Problems) sortByPlace(files []File) Problems {
	order := map[string]int{}
	for i, f := range files {
		if _, ok := order[f.Name]; !ok {
			order[f.Name] = i
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if c := cmp.Compare(order[a.File], order[b.File]); c != 0 {
			return c < 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return slices.Compact(ps)
}

// source is one mapping file, for turning byte offsets into lines and
// columns.
type source struct {
	name  string
	data  []byte
	lines []int // the byte offset where each line starts
}

func newSource(f File) *source {
	s := &source{name: f.Name, data: f.Data, lines: []int{0}}
	for i, c := range f.Data {
		if c == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// problem makes a Problem at byte offset off; off < 0 is the whole file.
func (s *source) problem(off int, format string, args ...any) Problem {
	p := Problem{File: s.name, Msg: fmt.Sprintf(format, args...)}
	if off < 0 {
		return p
	}
	off = min(off, len(s.data))
	line := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off }) - 1
	start := s.lines[line]
	end := len(s.data)
	if line+1 < len(s.lines) {
		end = s.lines[line+1]
	}
	text := bytes.TrimRight(s.data[start:end], "\r\n")
	p.Line = line + 1
	p.Col = utf8.RuneCount(s.data[start:off]) + 1
	p.Text = string(text)
	return p
}

// offset returns the byte offset of a 1-based line and byte column, as the
// TOML decoder reports them.
func (s *source) offset(line, col int) int {
	if line < 1 || line > len(s.lines) {
		return -1
	}
	return min(s.lines[line-1]+max(col, 1)-1, len(s.data))
}

// stringOffsets returns the byte offset in data of every rune of the value of
// the TOML string token data[start:end] (quotes included), plus one for the
// end of the value, so that a position in an expression can be shown where
// it is in the file. want is the decoded value; if the walk disagrees with
// it, every rune is placed at the start of the value.
func stringOffsets(data []byte, start, end int, want string) []int {
	n := utf8.RuneCountInString(want)
	offs := make([]int, 0, n+1)
	if start < 0 || end > len(data) || end-start < 2 {
		return fallbackOffsets(max(start, 0), n)
	}
	tok := data[start:end]
	i, stop := 1, len(tok)-1
	literal := tok[0] == '\''
	multi := len(tok) >= 6 && (bytes.HasPrefix(tok, []byte(`'''`)) || bytes.HasPrefix(tok, []byte(`"""`)))
	if multi {
		i, stop = 3, len(tok)-3
		if bytes.HasPrefix(tok[i:], []byte("\n")) {
			i++
		} else if bytes.HasPrefix(tok[i:], []byte("\r\n")) {
			i += 2
		}
	}
	for i < stop {
		c := tok[i]
		if literal || c != '\\' {
			_, size := utf8.DecodeRune(tok[i:])
			offs = append(offs, start+i)
			i += size
			continue
		}
		if i+1 >= stop {
			break
		}
		switch tok[i+1] {
		case 'u':
			offs = append(offs, start+i)
			i += 6
		case 'U':
			offs = append(offs, start+i)
			i += 10
		case 'x':
			offs = append(offs, start+i)
			i += 4
		case ' ', '\t', '\r', '\n': // a line-ending backslash
			j := i + 1
			for j < stop && strings.IndexByte(" \t\r\n", tok[j]) >= 0 {
				j++
			}
			i = j
		default:
			offs = append(offs, start+i)
			i += 2
		}
	}
	if len(offs) != n {
		return fallbackOffsets(start+1, n)
	}
	return append(offs, start+min(stop, len(tok)))
}

func fallbackOffsets(at, n int) []int {
	offs := make([]int, n+1)
	for i := range offs {
		offs[i] = at
	}
	return offs
}
