"""Sans-I/O codecs: every wire format turns text or bytes into typed objects and back."""
