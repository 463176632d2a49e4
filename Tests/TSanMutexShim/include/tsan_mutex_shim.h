/* No declarations: tsan_mutex_shim.c only replaces a symbol in ThreadSanitizer builds. */
