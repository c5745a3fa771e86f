# tests/security/boxes_py/flood.py: a python3 box that writes to stderr
# without end, in 64 KiB blocks.
import sys

block = b"p" * 65536
while True:
    sys.stderr.buffer.write(block)
