# functions/hello: the smallest box. Reads a name on stdin, greets it.
import sys

name = sys.stdin.read().strip() or "world"
print(f"hello, {name}")
