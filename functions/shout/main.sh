# functions/shout: a shell box. Upper-cases its input; an empty input gets
# a default line. Uses only what /bin/sh and coreutils give.
input=$(cat)
[ -n "$input" ] || input="nothing to shout about"
printf '%s\n' "$input" | tr '[:lower:]' '[:upper:]'
