// Package layout holds no code: its test checks that the packages import one another only in the
// directions README's Architecture section states.
package layout
