/* cli/docsplit.h: cut a multi-document YAML file into the text of each
 * document, so that each can be sent to the API on its own (the API takes
 * one document per request). YAML makes this a line-level job: a line that
 * starts with "---" or "..." followed by a blank or the end of the line is a
 * document marker wherever it appears, even inside a block or quoted
 * scalar, which it ends. Directives ("%YAML") go with the document they
 * precede; segments with only comments and blank lines are no document.
 * The deploy verb checks the result against the parser: each piece must
 * parse alone into the same manifest as in the whole file. */
#pragma once

#include <stddef.h>

typedef struct YamlDoc {
        size_t offset;          /* into the text */
        size_t len;
        unsigned line;          /* 1-based line where the piece starts */
} YamlDoc;

/* Fill docs[0..max) and return how many there are, or -E2BIG when there
 * are more than max. */
int docsplit(const char *text, size_t len, YamlDoc *docs, size_t max);
