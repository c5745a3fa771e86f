# cli/fnbox.bash: bash completion for the fnbox CLI. Completes the verbs
# (and the sub-verbs of token, llm, skill and sessions), global and per-verb
# options, -o, --role and --runtime values, manifest paths for deploy, files
# after `call -d @` and --file, folders after --output-dir, function names
# (asking the server, with a short timeout) for describe, delete, revisions,
# traffic, call and logs, skill names for skill list, show, promote,
# deprecate and call, and session ids for replay and sessions show|delete.
#
# Install: make install (to $(PREFIX)/share/bash-completion/completions/fnbox),
# or source this file from ~/.bashrc.

# NAME column of `fnbox ARGS...` (list, skill list, sessions), with the global options
# already typed (url, token, namespace)
_fnbox_names() {
        local -a args=()
        local i
        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                --url | --token | --namespace | -n)
                        args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
                        ((i++))
                        ;;
                esac
        done
        "${COMP_WORDS[0]}" "$@" --timeout 2s "${args[@]}" 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_fnbox_functions() {
        _fnbox_names list
}

_fnbox() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local verbs="deploy list describe delete revisions traffic call replay sessions logs nodes token skill llm up version"
        local globals="--url --token --namespace -n --output -o --timeout --help -h"
        local verb="" sub="" npos=0 i w
        COMPREPLY=()

        case $prev in
        -o | --output)
                COMPREPLY=($(compgen -W "table wide json yaml" -- "$cur"))
                return
                ;;
        --role)
                COMPREPLY=($(compgen -W "admin developer invoker" -- "$cur"))
                return
                ;;
        -f | --file | --data-dir)
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
                return
                ;;
        --output-dir)
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -d -- "$cur"))
                return
                ;;
        -d | --data)
                if [[ $cur == @* ]]; then
                        compopt -o filenames 2>/dev/null
                        COMPREPLY=($(compgen -f -- "${cur#@}" | sed 's/^/@/'))
                fi
                return
                ;;
        -X | --request)
                COMPREPLY=($(compgen -W "GET POST PUT PATCH DELETE HEAD" -- "$cur"))
                return
                ;;
        --runtime)
                COMPREPLY=($(compgen -W "python3 node sh" -- "$cur"))
                return
                ;;
        --url | --token | --namespace | -n | --timeout | --description | --tag | -H | --header | --path | \
                --activator | --tail | --store | --listen | --api-listen | --label | --node | --user | \
                --run-dir | --ready-timeout | --example | --model | --rounds | --name | --limit | --alias | --since)
                return
                ;;
        esac

        # find the verb (and token's sub-verb), skipping options and their values
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                case $w in
                --url | --token | --namespace | -n | --output | -o | --timeout | -f | --file | \
                        --role | --description | --tag | -d | --data | -H | --header | --path | -X | \
                        --request | --activator | --tail | --data-dir | --store | --listen | --api-listen | \
                        --label | --node | --user | --run-dir | --ready-timeout | --runtime | --example | \
                        --model | --rounds | --name | --limit | --alias | --since | --output-dir)
                        ((i++))
                        continue
                        ;;
                -*) continue ;;
                esac
                if [[ -z $verb ]]; then
                        verb=$w
                elif [[ ($verb == token || $verb == skill || $verb == llm || $verb == sessions) && -z $sub ]]; then
                        sub=$w
                else
                        ((npos++))
                fi
        done

        if [[ -z $verb ]]; then
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "$globals" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
                fi
                return
        fi

        local opts=""
        case $verb in
        deploy) opts="-f --file" ;;
        list) opts="-A --all-namespaces" ;;
        traffic) opts="--tag" ;;
        call) opts="-d --data -H --header --tag --path -X --request --activator --file --output-dir" ;;
        replay) opts="--output-dir --check" ;;
        sessions)
                if [[ -z $sub ]]; then
                        [[ $cur != -* ]] && COMPREPLY=($(compgen -W "list show delete" -- "$cur")) && return
                fi
                ;;
        logs) opts="--tail" ;;
        up) opts="--data-dir --store --listen --api-listen --label --node --user --run-dir --ready-timeout --no-config" ;;
        token)
                if [[ -z $sub ]]; then
                        COMPREPLY=($(compgen -W "create list revoke" -- "$cur"))
                        return
                fi
                [[ $sub == create ]] && opts="--role --namespace -n --description"
                ;;
        llm)
                if [[ -z $sub ]]; then
                        COMPREPLY=($(compgen -W "log" -- "$cur"))
                        return
                fi
                opts="--alias --since --limit -A --all-namespaces"
                ;;
        skill)
                if [[ -z $sub ]]; then
                        COMPREPLY=($(compgen -W "generate list show search promote deprecate call" -- "$cur"))
                        return
                fi
                case $sub in
                generate) opts="--runtime --example --model --rounds --name --file" ;;
                search) opts="--limit" ;;
                call) opts="-d --data -H --header --path -X --request --activator --file --output-dir" ;;
                esac
                ;;
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$opts $globals" -- "$cur"))
                return
        fi
        case $verb in
        deploy)
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
                ;;
        skill)
                case $sub in
                list | show | promote | deprecate | call)
                        ((npos == 0)) && COMPREPLY=($(compgen -W "$(_fnbox_names skill list)" -- "$cur"))
                        ;;
                esac
                ;;
        replay)
                ((npos == 0)) && COMPREPLY=($(compgen -W "$(_fnbox_names sessions)" -- "$cur"))
                ;;
        sessions)
                if [[ ($sub == show || $sub == delete) ]] && ((npos == 0)); then
                        COMPREPLY=($(compgen -W "$(_fnbox_names sessions)" -- "$cur"))
                fi
                ;;
        describe | delete | revisions | traffic | call | logs)
                if ((npos == 0)); then
                        COMPREPLY=($(compgen -W "$(_fnbox_functions)" -- "$cur"))
                elif [[ $verb == traffic ]]; then
                        COMPREPLY=($(compgen -W "@latest=" -- "$cur"))
                        compopt -o nospace 2>/dev/null
                fi
                ;;
        esac
}

complete -F _fnbox fnbox
