"""The service layer: one function per operation. The CLI and the HTTP API are two thin faces over it and
hold no logic of their own; every function here takes the caller's identity (`actor`) for the audit log."""
