// Package jsonscan reads and checks JSON without decoding it: validity (Valid, Object), a few
// top-level members of a document (TopField, TopFields, UniqueTopFields, with MemberString and
// friends for their values), the repair of invalid UTF-8 inside strings (RepairUTF8) and the
// encoding of one string (AppendString). wxgate signs and forwards the exact bytes it received,
// so it never rebuilds a document; it only needs to look at a few members of one.
//
// It imports nothing of wxgate's and allocates nothing on the paths the signing proxy uses.
package jsonscan
