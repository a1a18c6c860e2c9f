package mapping

import (
	"fmt"

	"github.com/expr-lang/expr"
)

// functions returns the helper functions mapping expressions may call, bound
// to the Set's lookup tables.
func functions(lookups map[string]map[string]string) []expr.Option {
	return []expr.Option{
		// lookup(table, value[, default]) maps value through [lookups.table];
		// a value the table lacks gives default, or nil.
		expr.Function("lookup", func(args ...any) (any, error) {
			table, _ := args[0].(string)
			var def any
			if len(args) == 3 {
				def = args[2]
			}
			if args[1] == nil {
				return def, nil
			}
			if v, ok := lookups[table][fmt.Sprint(args[1])]; ok {
				return v, nil
			}
			return def, nil
		},
			new(func(string, any) any),
			new(func(string, any, any) any),
		),
		// coalesce(a, b, …) is the first argument that is neither nil nor "".
		expr.Function("coalesce", func(args ...any) (any, error) {
			for _, a := range args {
				if a != nil && a != "" {
					return a, nil
				}
			}
			return nil, nil
		}),
	}
}
