
use builtin;
use str;

set edit:completion:arg-completer[nora] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'nora'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'nora'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the registry server (the default when no command is given)'
            cand images 'List and inspect images'
            cand tag 'Tag an image under another name, without copying blobs'
            cand delete 'Delete tags or manifests'
            cand gc 'Garbage-collect blobs no manifest references (online)'
            cand retention 'Remove old tags by the configured [[retention]] rules'
            cand migrate 'Copy a whole store to another backend (local <-> S3), verified and resumable'
            cand backup 'Write a consistent snapshot of a store to a .tar.gz, while nora serves'
            cand restore 'Read a backup into a store, verified and resumable'
            cand token 'Create, list and revoke API tokens'
            cand login 'Log in to a nora server (a person''s password, or a CI''s OIDC identity)'
            cand logout 'Revoke and forget the stored login for a server'
            cand completions 'Print shell completions, or write man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;serve'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;images'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand ls 'List repositories and tags with digest, size, platforms and push time'
            cand list 'List repositories and tags with digest, size, platforms and push time'
            cand inspect 'Show one image: manifest, config summary, layers, referrers'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;images;ls'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;images;list'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;images;inspect'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;images;help'= {
            cand ls 'List repositories and tags with digest, size, platforms and push time'
            cand inspect 'Show one image: manifest, config summary, layers, referrers'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;images;help;ls'= {
        }
        &'nora;images;help;inspect'= {
        }
        &'nora;images;help;help'= {
        }
        &'nora;tag'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;delete'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'Show what would be deleted, delete nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;gc'= {
            cand --grace 'Keep unreferenced blobs younger than this ("1h", "30m", "0s"); default: [gc] grace of the config, 1h'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'Report what would be removed, remove nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;retention'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'List each tag that would go and the rule that removes it; remove nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;migrate'= {
            cand --from 'Source: local, s3, a directory, or s3://BUCKET/PREFIX'
            cand --to 'Destination: local, s3, a directory, or s3://BUCKET/PREFIX'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'Show what would be copied; write nothing'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;backup'= {
            cand --file 'The archive to write (a .tar.gz); `-o FILE` works too'
            cand --from 'The store to back up: local, s3, a directory, s3://BUCKET/PREFIX (default: the configured storage)'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;restore'= {
            cand -i 'The archive written by `nora backup`'
            cand --input 'The archive written by `nora backup`'
            cand --to 'Where to restore: local, s3, a directory, s3://BUCKET/PREFIX (default: the configured storage)'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --dry-run 'Read and verify the whole archive; write nothing'
            cand -y 'Do not ask before restoring into a store that holds repositories'
            cand --yes 'Do not ask before restoring into a store that holds repositories'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;token'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand create 'Create a token and print its secret (shown this once)'
            cand ls 'List tokens: name, permissions, created, expires, last used (never secrets)'
            cand list 'List tokens: name, permissions, created, expires, last used (never secrets)'
            cand revoke 'Revoke a token; every instance refuses it at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;token;create'= {
            cand --name 'A unique name (also usable as a rule subject in [[auth.rules]])'
            cand --role 'read (pull), write (pull + push) or admin (everything), on every repository'
            cand --scope 'A permission ACTION:REPOSITORY-GLOB (pull, push, delete, admin), repeatable'
            cand --expires 'Lifetime ("30d", "12h"); never expires when absent'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;token;ls'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;token;list'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;token;revoke'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;token;help'= {
            cand create 'Create a token and print its secret (shown this once)'
            cand ls 'List tokens: name, permissions, created, expires, last used (never secrets)'
            cand revoke 'Revoke a token; every instance refuses it at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;token;help;create'= {
        }
        &'nora;token;help;ls'= {
        }
        &'nora;token;help;revoke'= {
        }
        &'nora;token;help;help'= {
        }
        &'nora;login'= {
            cand -u 'User name (asked when absent)'
            cand --username 'User name (asked when absent)'
            cand --expires 'Lifetime of the login token (default 30d; from 1m to 365d)'
            cand --audience 'Audience of the GitHub Actions ID token (default: the server URL)'
            cand --id-token-env 'Read the ID token from this environment variable (GitLab''s id_tokens; default NORA_ID_TOKEN when not in GitHub Actions)'
            cand --id-token-file 'Read the ID token from this file'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --password-stdin 'Read the password from stdin instead of asking'
            cand --oidc 'CI: exchange the platform''s OIDC ID token (GitHub Actions, GitLab CI) and write the container clients'' auth file as well'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;logout'= {
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;completions'= {
            cand --dir 'Write files into this directory instead of printing (required for man)'
            cand --config 'Configuration file (default: ./config.toml when present)'
            cand --url 'Operate on a running nora through its admin API instead of on storage'
            cand --token 'API token for --url (default: NORA_TOKEN, else the token of `nora login`)'
            cand --timeout 'With --url, login, logout: seconds to wait for an answer (default 60, and no limit for gc and retention; 0: no limit)'
            cand --data-dir 'Storage directory to operate on (overrides [storage] path)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand -q 'Print only what was asked for: no progress, no summaries'
            cand --quiet 'Print only what was asked for: no progress, no summaries'
            cand -v 'Log what happens on stderr (-vv for more)'
            cand --verbose 'Log what happens on stderr (-vv for more)'
            cand --no-color 'No colours (also when NO_COLOR is set or stdout is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'nora;help'= {
            cand serve 'Run the registry server (the default when no command is given)'
            cand images 'List and inspect images'
            cand tag 'Tag an image under another name, without copying blobs'
            cand delete 'Delete tags or manifests'
            cand gc 'Garbage-collect blobs no manifest references (online)'
            cand retention 'Remove old tags by the configured [[retention]] rules'
            cand migrate 'Copy a whole store to another backend (local <-> S3), verified and resumable'
            cand backup 'Write a consistent snapshot of a store to a .tar.gz, while nora serves'
            cand restore 'Read a backup into a store, verified and resumable'
            cand token 'Create, list and revoke API tokens'
            cand login 'Log in to a nora server (a person''s password, or a CI''s OIDC identity)'
            cand logout 'Revoke and forget the stored login for a server'
            cand completions 'Print shell completions, or write man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'nora;help;serve'= {
        }
        &'nora;help;images'= {
            cand ls 'List repositories and tags with digest, size, platforms and push time'
            cand inspect 'Show one image: manifest, config summary, layers, referrers'
        }
        &'nora;help;images;ls'= {
        }
        &'nora;help;images;inspect'= {
        }
        &'nora;help;tag'= {
        }
        &'nora;help;delete'= {
        }
        &'nora;help;gc'= {
        }
        &'nora;help;retention'= {
        }
        &'nora;help;migrate'= {
        }
        &'nora;help;backup'= {
        }
        &'nora;help;restore'= {
        }
        &'nora;help;token'= {
            cand create 'Create a token and print its secret (shown this once)'
            cand ls 'List tokens: name, permissions, created, expires, last used (never secrets)'
            cand revoke 'Revoke a token; every instance refuses it at once'
        }
        &'nora;help;token;create'= {
        }
        &'nora;help;token;ls'= {
        }
        &'nora;help;token;revoke'= {
        }
        &'nora;help;login'= {
        }
        &'nora;help;logout'= {
        }
        &'nora;help;completions'= {
        }
        &'nora;help;help'= {
        }
    ]
    $completions[$command]
}
