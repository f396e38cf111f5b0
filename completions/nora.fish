# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nora_global_optspecs
    string join \n config= url= token= timeout= data-dir= o/output= q/quiet v/verbose no-color h/help V/version
end

function __fish_nora_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nora_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nora_using_subcommand
    set -l cmd (__fish_nora_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nora -n "__fish_nora_needs_command" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_needs_command" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_needs_command" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_needs_command" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_needs_command" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_needs_command" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_needs_command" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_needs_command" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_needs_command" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_needs_command" -s V -l version -d 'Print version'
complete -c nora -n "__fish_nora_needs_command" -f -a "serve" -d 'Run the registry server (the default when no command is given)'
complete -c nora -n "__fish_nora_needs_command" -f -a "images" -d 'List and inspect images'
complete -c nora -n "__fish_nora_needs_command" -f -a "tag" -d 'Tag an image under another name, without copying blobs'
complete -c nora -n "__fish_nora_needs_command" -f -a "delete" -d 'Delete tags or manifests'
complete -c nora -n "__fish_nora_needs_command" -f -a "gc" -d 'Garbage-collect blobs no manifest references (online)'
complete -c nora -n "__fish_nora_needs_command" -f -a "retention" -d 'Remove old tags by the configured [[retention]] rules'
complete -c nora -n "__fish_nora_needs_command" -f -a "migrate" -d 'Copy a whole store to another backend (local <-> S3), verified and resumable'
complete -c nora -n "__fish_nora_needs_command" -f -a "backup" -d 'Write a consistent snapshot of a store to a .tar.gz, while nora serves'
complete -c nora -n "__fish_nora_needs_command" -f -a "restore" -d 'Read a backup into a store, verified and resumable'
complete -c nora -n "__fish_nora_needs_command" -f -a "token" -d 'Create, list and revoke API tokens'
complete -c nora -n "__fish_nora_needs_command" -f -a "login" -d 'Log in to a nora server (a person\'s password, or a CI\'s OIDC identity)'
complete -c nora -n "__fish_nora_needs_command" -f -a "logout" -d 'Revoke and forget the stored login for a server'
complete -c nora -n "__fish_nora_needs_command" -f -a "completions" -d 'Print shell completions, or write man pages'
complete -c nora -n "__fish_nora_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand serve" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand serve" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand serve" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand serve" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand serve" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand serve" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand serve" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand serve" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand serve" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -f -a "ls" -d 'List repositories and tags with digest, size, platforms and push time'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -f -a "list" -d 'List repositories and tags with digest, size, platforms and push time'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -f -a "inspect" -d 'Show one image: manifest, config summary, layers, referrers'
complete -c nora -n "__fish_nora_using_subcommand images; and not __fish_seen_subcommand_from ls list inspect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List repositories and tags with digest, size, platforms and push time'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Show one image: manifest, config summary, layers, referrers'
complete -c nora -n "__fish_nora_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand tag" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand tag" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand tag" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand tag" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand tag" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand tag" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand tag" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand tag" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand tag" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand tag" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand delete" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand delete" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand delete" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand delete" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand delete" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand delete" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand delete" -l dry-run -d 'Show what would be deleted, delete nothing'
complete -c nora -n "__fish_nora_using_subcommand delete" -s y -l yes -d 'Do not ask for confirmation'
complete -c nora -n "__fish_nora_using_subcommand delete" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand delete" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand delete" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand gc" -l grace -d 'Keep unreferenced blobs younger than this ("1h", "30m", "0s"); default: [gc] grace of the config, 1h' -r
complete -c nora -n "__fish_nora_using_subcommand gc" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand gc" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand gc" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand gc" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand gc" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand gc" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand gc" -l dry-run -d 'Report what would be removed, remove nothing'
complete -c nora -n "__fish_nora_using_subcommand gc" -s y -l yes -d 'Do not ask for confirmation'
complete -c nora -n "__fish_nora_using_subcommand gc" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand gc" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand gc" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand gc" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand retention" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand retention" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand retention" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand retention" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand retention" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand retention" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand retention" -l dry-run -d 'List each tag that would go and the rule that removes it; remove nothing'
complete -c nora -n "__fish_nora_using_subcommand retention" -s y -l yes -d 'Do not ask for confirmation'
complete -c nora -n "__fish_nora_using_subcommand retention" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand retention" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand retention" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand retention" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand migrate" -l from -d 'Source: local, s3, a directory, or s3://BUCKET/PREFIX' -r
complete -c nora -n "__fish_nora_using_subcommand migrate" -l to -d 'Destination: local, s3, a directory, or s3://BUCKET/PREFIX' -r
complete -c nora -n "__fish_nora_using_subcommand migrate" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand migrate" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand migrate" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand migrate" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand migrate" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand migrate" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand migrate" -l dry-run -d 'Show what would be copied; write nothing'
complete -c nora -n "__fish_nora_using_subcommand migrate" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand migrate" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand migrate" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand backup" -l file -d 'The archive to write (a .tar.gz); `-o FILE` works too' -r -F
complete -c nora -n "__fish_nora_using_subcommand backup" -l from -d 'The store to back up: local, s3, a directory, s3://BUCKET/PREFIX (default: the configured storage)' -r
complete -c nora -n "__fish_nora_using_subcommand backup" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand backup" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand backup" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand backup" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand backup" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand backup" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand backup" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand backup" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand backup" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand restore" -s i -l input -d 'The archive written by `nora backup`' -r -F
complete -c nora -n "__fish_nora_using_subcommand restore" -l to -d 'Where to restore: local, s3, a directory, s3://BUCKET/PREFIX (default: the configured storage)' -r
complete -c nora -n "__fish_nora_using_subcommand restore" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand restore" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand restore" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand restore" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand restore" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand restore" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand restore" -l dry-run -d 'Read and verify the whole archive; write nothing'
complete -c nora -n "__fish_nora_using_subcommand restore" -s y -l yes -d 'Do not ask before restoring into a store that holds repositories'
complete -c nora -n "__fish_nora_using_subcommand restore" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand restore" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand restore" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -f -a "create" -d 'Create a token and print its secret (shown this once)'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -f -a "ls" -d 'List tokens: name, permissions, created, expires, last used (never secrets)'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -f -a "list" -d 'List tokens: name, permissions, created, expires, last used (never secrets)'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -f -a "revoke" -d 'Revoke a token; every instance refuses it at once'
complete -c nora -n "__fish_nora_using_subcommand token; and not __fish_seen_subcommand_from create ls list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l name -d 'A unique name (also usable as a rule subject in [[auth.rules]])' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l role -d 'read (pull), write (pull + push) or admin (everything), on every repository' -r -f -a "read\t''
write\t''
admin\t''"
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l scope -d 'A permission ACTION:REPOSITORY-GLOB (pull, push, delete, admin), repeatable' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l expires -d 'Lifetime ("30d", "12h"); never expires when absent' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a token and print its secret (shown this once)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List tokens: name, permissions, created, expires, last used (never secrets)'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a token; every instance refuses it at once'
complete -c nora -n "__fish_nora_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand login" -s u -l username -d 'User name (asked when absent)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l expires -d 'Lifetime of the login token (default 30d; from 1m to 365d)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l audience -d 'Audience of the GitHub Actions ID token (default: the server URL)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l id-token-env -d 'Read the ID token from this environment variable (GitLab\'s id_tokens; default NORA_ID_TOKEN when not in GitHub Actions)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l id-token-file -d 'Read the ID token from this file' -r -F
complete -c nora -n "__fish_nora_using_subcommand login" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand login" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand login" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand login" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand login" -l password-stdin -d 'Read the password from stdin instead of asking'
complete -c nora -n "__fish_nora_using_subcommand login" -l oidc -d 'CI: exchange the platform\'s OIDC ID token (GitHub Actions, GitLab CI) and write the container clients\' auth file as well'
complete -c nora -n "__fish_nora_using_subcommand login" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand login" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand login" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand logout" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand logout" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand logout" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand logout" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand logout" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand logout" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand logout" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand logout" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand logout" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand completions" -l dir -d 'Write files into this directory instead of printing (required for man)' -r -F
complete -c nora -n "__fish_nora_using_subcommand completions" -l config -d 'Configuration file (default: ./config.toml when present)' -r -F
complete -c nora -n "__fish_nora_using_subcommand completions" -l url -d 'Operate on a running nora through its admin API instead of on storage' -r
complete -c nora -n "__fish_nora_using_subcommand completions" -l token -d 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)' -r
complete -c nora -n "__fish_nora_using_subcommand completions" -l timeout -d 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)' -r
complete -c nora -n "__fish_nora_using_subcommand completions" -l data-dir -d 'Storage directory to operate on (overrides [storage] path)' -r -F
complete -c nora -n "__fish_nora_using_subcommand completions" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people (the default)'
wide\t'Every column, full digests and times'
json\t'JSON on stdout, for scripts'"
complete -c nora -n "__fish_nora_using_subcommand completions" -s q -l quiet -d 'Print only what was asked for: no progress, no summaries'
complete -c nora -n "__fish_nora_using_subcommand completions" -s v -l verbose -d 'Log what happens on stderr (-vv for more)'
complete -c nora -n "__fish_nora_using_subcommand completions" -l no-color -d 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
complete -c nora -n "__fish_nora_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "serve" -d 'Run the registry server (the default when no command is given)'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "images" -d 'List and inspect images'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "tag" -d 'Tag an image under another name, without copying blobs'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "delete" -d 'Delete tags or manifests'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "gc" -d 'Garbage-collect blobs no manifest references (online)'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "retention" -d 'Remove old tags by the configured [[retention]] rules'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "migrate" -d 'Copy a whole store to another backend (local <-> S3), verified and resumable'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "backup" -d 'Write a consistent snapshot of a store to a .tar.gz, while nora serves'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "restore" -d 'Read a backup into a store, verified and resumable'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "token" -d 'Create, list and revoke API tokens'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "login" -d 'Log in to a nora server (a person\'s password, or a CI\'s OIDC identity)'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "logout" -d 'Revoke and forget the stored login for a server'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "completions" -d 'Print shell completions, or write man pages'
complete -c nora -n "__fish_nora_using_subcommand help; and not __fish_seen_subcommand_from serve images tag delete gc retention migrate backup restore token login logout completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nora -n "__fish_nora_using_subcommand help; and __fish_seen_subcommand_from images" -f -a "ls" -d 'List repositories and tags with digest, size, platforms and push time'
complete -c nora -n "__fish_nora_using_subcommand help; and __fish_seen_subcommand_from images" -f -a "inspect" -d 'Show one image: manifest, config summary, layers, referrers'
complete -c nora -n "__fish_nora_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Create a token and print its secret (shown this once)'
complete -c nora -n "__fish_nora_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "ls" -d 'List tokens: name, permissions, created, expires, last used (never secrets)'
complete -c nora -n "__fish_nora_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "revoke" -d 'Revoke a token; every instance refuses it at once'
