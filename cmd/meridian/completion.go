package main

import (
	"fmt"
	"strings"
)

// completionCommands are the top-level commands completed; subcommands
// lists the words that may follow some of them. Flags are not listed here:
// the scripts read them from 'meridian CMD --help' when a word starting
// with '-' is completed, so they never go out of date.
var (
	completionCommands = []string{"agent", "dev", "regions", "register", "deregister", "heartbeat", "services",
		"instances", "acl", "tls", "keyring", "sim", "version", "completion", "help"}
	completionSubcommands = map[string]string{
		"regions":    "forget",
		"acl":        "token",
		"tls":        "ca cert",
		"keyring":    "generate list install use remove",
		"sim":        "run list fuzz",
		"completion": "bash zsh",
	}
)

const bashCompletion = `# bash completion for meridian: source <(meridian completion bash)
# or save it as /etc/bash_completion.d/meridian.
_meridian() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	local bin="${COMP_WORDS[0]}"
	COMPREPLY=()
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W "{{COMMANDS}} --help --version" -- "$cur"))
		return
	fi
	local cmd="${COMP_WORDS[1]}"
	if [[ "$cur" == -* ]]; then
		local sub=""
		[[ $COMP_CWORD -gt 2 && "$cmd" == sim ]] && sub="${COMP_WORDS[2]}"
		local flags
		flags="$("$bin" $cmd $sub --help 2>&1 | grep -oE -- '(^|[ [])--?[a-z][a-z0-9-]*' | sed -E 's/^[ []*-+/--/' | sort -u)"
		COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
		return
	fi
	if [[ $COMP_CWORD -eq 2 ]]; then
		case "$cmd" in
{{SUBCOMMANDS_BASH}}		esac
	fi
	if [[ $COMP_CWORD -eq 3 && "$cmd" == sim && "${COMP_WORDS[2]}" == run ]]; then
		COMPREPLY=($(compgen -W "$("$bin" sim list 2>/dev/null | awk '{print $1}')" -- "$cur") $(compgen -f -- "$cur"))
		return
	fi
	if [[ $COMP_CWORD -eq 3 && "$cmd" == acl && "${COMP_WORDS[2]}" == token ]]; then
		COMPREPLY=($(compgen -W "create list read delete generate" -- "$cur"))
		return
	fi
	if [[ $COMP_CWORD -eq 3 && ( "$cmd" == tls ) ]]; then
		COMPREPLY=($(compgen -W "create" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _meridian meridian
`

const zshCompletion = `#compdef meridian
# zsh completion for meridian: source <(meridian completion zsh), or save it
# as _meridian in a directory of $fpath.
_meridian() {
	local bin=${words[1]}
	if (( CURRENT == 2 )); then
		compadd -- {{COMMANDS}} --help --version
		return
	fi
	local cmd=${words[2]}
	if [[ ${words[CURRENT]} == -* ]]; then
		local sub=""
		[[ $cmd == sim && CURRENT -gt 3 ]] && sub=${words[3]}
		local -a flags
		flags=(${(f)"$($bin $cmd $sub --help 2>&1 | grep -oE -- '(^|[ [])--?[a-z][a-z0-9-]*' | sed -E 's/^[ []*-+/--/' | sort -u)"})
		compadd -- $flags --help
		return
	fi
	if (( CURRENT == 3 )); then
		case $cmd in
{{SUBCOMMANDS_ZSH}}		esac
	fi
	if (( CURRENT == 4 )) && [[ $cmd == sim && ${words[3]} == run ]]; then
		compadd -- ${(f)"$($bin sim list 2>/dev/null | awk '{print $1}')"}
		_files
		return
	fi
	if (( CURRENT == 4 )) && [[ $cmd == acl && ${words[3]} == token ]]; then
		compadd -- create list read delete generate
		return
	fi
	if (( CURRENT == 4 )) && [[ $cmd == tls ]]; then
		compadd -- create
		return
	fi
	_files
}
if [[ $funcstack[1] == _meridian ]]; then
	_meridian "$@"
else
	compdef _meridian meridian
fi
`

// completionScript returns the completion script for shell.
func completionScript(shell string) (string, error) {
	var bashCases, zshCases strings.Builder
	for _, c := range completionCommands {
		if sub, ok := completionSubcommands[c]; ok {
			fmt.Fprintf(&bashCases, "\t\t%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", c, sub)
			fmt.Fprintf(&zshCases, "\t\t%s) compadd -- %s; return ;;\n", c, sub)
		}
	}
	cmds := strings.Join(completionCommands, " ")
	switch shell {
	case "bash":
		return strings.NewReplacer("{{COMMANDS}}", cmds, "{{SUBCOMMANDS_BASH}}", bashCases.String()).Replace(bashCompletion), nil
	case "zsh":
		return strings.NewReplacer("{{COMMANDS}}", cmds, "{{SUBCOMMANDS_ZSH}}", zshCases.String()).Replace(zshCompletion), nil
	}
	return "", usagef("usage: meridian completion bash|zsh (got %q)", shell)
}

// cmdCompletion prints a shell completion script.
func cmdCompletion(args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Print("Usage: meridian completion bash|zsh\n\n" +
			"  bash: source <(meridian completion bash)   or save to /etc/bash_completion.d/meridian\n" +
			"  zsh:  source <(meridian completion zsh)    or save as _meridian in a directory of $fpath\n")
		return nil
	}
	if len(args) != 1 {
		return usagef("usage: meridian completion bash|zsh")
	}
	s, err := completionScript(args[0])
	if err != nil {
		return err
	}
	fmt.Print(s)
	return nil
}
