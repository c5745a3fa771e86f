/* cli/config.h: where the CLI's settings come from. Each of url, token and
 * namespace (and activator, for `fnbox call`) is taken from the first of:
 * the command-line flag, the environment (FNBOX_URL, FNBOX_TOKEN,
 * FNBOX_NAMESPACE, FNBOX_ACTIVATOR; empty counts as unset), the config file ($FNBOX_CONFIG, else
 * ${XDG_CONFIG_HOME:-~/.config}/fnbox/config.yaml), the default. A token
 * may finally come from the controller's admin.token when it is readable. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

#define CONFIG_FILE_MAX         (64u << 10)
#define CONFIG_VALUE_MAX        4096

/* The global options as given on the command line (NULL: not given). */
typedef struct CliFlags {
        const char *url;
        const char *token;
        const char *namespace_;
        const char *output;
        const char *timeout;
} CliFlags;

typedef struct ConfigFile {
        char *path;             /* NULL: no file */
        char *url, *token, *namespace_, *activator;
        bool loose_mode;        /* readable by group or others */
} ConfigFile;

/* Parse the text of a config file: "key: value" lines (url, token,
 * namespace, activator), comments, blank lines, values plain or quoted. Strict: unknown
 * or repeated keys, indentation and YAML beyond that are errors. On error
 * returns -EINVAL and why holds "LINE: message". */
int config_parse(const char *text, size_t len, ConfigFile *ret, char *why, size_t why_size);

/* Find and parse the config file; a missing default file is fine, a missing
 * $FNBOX_CONFIG is not. why holds "PATH:LINE: message" on error. */
int config_load(ConfigFile *ret, char *why, size_t why_size);
void config_file_done(ConfigFile *f);

/* The config file the CLI reads: $FNBOX_CONFIG when set, else
 * ${XDG_CONFIG_HOME:-~/.config}/fnbox/config.yaml; NULL without a home. */
char *config_path(void);

/* Fill c from flags, environment, config file and defaults. Prints one
 * line and returns -EINVAL on a bad value or file. The activator address is
 * taken as found (c->activator, c->activator_from): only `call` uses it, and
 * checks it (config_activator). */
int config_resolve(const CliFlags *flags, Cli *c);

/* The activator address for `fnbox call`: flag (may be NULL) > the value
 * config_resolve found. Prints one line and returns -EINVAL when it is not
 * an http(s) URL; on success c->activator holds it without a trailing '/'. */
int config_activator(Cli *c, const char *flag);

/* Checks that each setting's value has the right shape. */
bool config_url_valid(const char *s);
bool config_token_valid(const char *s);
