# functions/wordcount: counts the lines, words and bytes of stdin (like wc)
# and prints them as one JSON object.
import json
import sys

data = sys.stdin.buffer.read()
text = data.decode("utf-8", errors="replace")
print(json.dumps({
    "lines": data.count(b"\n"),
    "words": len(text.split()),
    "bytes": len(data),
}))
