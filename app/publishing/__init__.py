"""Publishing: when approved content goes out (slots), and through which publisher."""
