// Package ops holds the node's typed operations: each capability is one
// function with typed arguments and a typed result, which the command
// line renders as text or --json and the local API (node/api) encodes as
// JSON. One operation, several faces (DESIGN.md decision 11), as Kubo's
// commands return values that encoders render.
//
// Rules for an operation, so that every face gives the same answer:
//   - it takes what it needs explicitly (a context, the repo or a narrow
//     interface of it, the node's host, its chain sync, the unlock
//     sessions), never a global;
//   - it prints nothing, knows nothing of HTTP or of flags, and gives no
//     command-line hints: the faces add those where they report;
//   - its arguments and its result are structs with JSON tags, each field
//     documented; the API's openapi.yaml describes the same fields, and
//     the command line's --json prints the same JSON;
//   - it validates its arguments itself (so a face cannot forget) and
//     wraps a refusal in ErrInvalid, a missing thing in ErrNotFound and a
//     conflict in ErrExists, with context, so that each face maps it (the
//     API to 400, 404, 409; the command line to a one-line error).
package ops
