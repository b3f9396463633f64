"""Runner worker process internals: the Runnable API, Runner, batching and IPC."""
