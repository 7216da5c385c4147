//! The destructive-command guard for exec (the `/api` dialect: "Certain destructive commands are
//! blocked: rm -rf /, mkfs, dd if=, :(){ :|:& };, shutdown, reboot, poweroff, halt").
//!
//! The command is read the way a shell reads it, not searched for substrings: split into simple
//! commands at `;`, `&&`, `||`, `|`, `&`, newlines, subshells and groups; quotes and backslashes
//! resolved into words; leading `VAR=value` assignments and wrappers (`sudo`, `env`, `nohup`,
//! `nice`, `timeout`, `xargs`, `busybox`, ...) skipped to the program; the program read by its
//! base name (`/usr/sbin/mkfs.ext4` is `mkfs.ext4`). Command substitutions (`$(...)`, backticks,
//! also inside double quotes) and `sh -c '...'` / `eval` are checked as commands of their own.
//! Quoted text is data: `echo "rm -rf /"` and `grep halt /var/log/syslog` pass.
//!
//! Refused: `rm` with a recursive flag on the root (`/`, `/*`, `//`, `/.`) or with
//! `--no-preserve-root`; `mkfs`, `mkfs.*` and `mke2fs`; `dd` with an `if=` operand (as the
//! reference lists it) or writing to a device (`of=/dev/...`, `/dev/null` excepted); `shutdown`,
//! `reboot`, `poweroff`, `halt`, `init 0|6`, `telinit 0|6`, `systemctl
//! poweroff|reboot|halt|kexec`; a fork bomb (a function that pipes into itself, any spacing).
//!
//! This prevents accidents, like a safety catch. It is **not a security boundary**: the command
//! runs as root on the customer's own machine, and anyone determined can write the same thing in
//! a way no parser recognises (a script file, `python -c`, base64). Power actions have their own
//! API (`/api/vps/:id/stop`, `/restart`).

use std::fmt;

/// Why a command was refused: the part that was recognised, and the rule it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The simple command, as words joined by spaces (`rm -rf /`).
    pub command: String,
    /// What it would do (`deletes the root filesystem`).
    pub reason: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Refused `{}`: it {}. Hangar blocks destructive commands (use the power API to stop or restart a machine)",
            self.command, self.reason
        )
    }
}

/// Checks a shell command; `Err` names the first destructive part found.
pub fn check(command: &str) -> Result<(), Refusal> {
    check_depth(command, 0)
}

/// Nested `sh -c` / `$(...)` deeper than this are refused: nobody types them by accident.
const MAX_DEPTH: usize = 8;

fn check_depth(command: &str, depth: usize) -> Result<(), Refusal> {
    if depth > MAX_DEPTH {
        return Err(Refusal {
            command: command.chars().take(60).collect(),
            reason: "nests shells and substitutions too deeply to be checked",
        });
    }
    if let Some(name) = fork_bomb(command) {
        return Err(Refusal {
            command: format!("{name}(){{ {name}|{name}& }}"),
            reason: "is a fork bomb (a function that keeps starting copies of itself)",
        });
    }
    let parsed = parse(command);
    for inner in &parsed.substitutions {
        check_depth(inner, depth + 1)?;
    }
    for words in &parsed.commands {
        simple_command(words, depth)?;
    }
    Ok(())
}

/// A command line read into simple commands (each a list of words) and the command
/// substitutions found anywhere in it.
#[derive(Debug, Default)]
struct Parsed {
    commands: Vec<Vec<String>>,
    substitutions: Vec<String>,
}

fn parse(input: &str) -> Parsed {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Parsed::default();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    // Here-document delimiters waiting for the end of the line that opened them.
    let mut heredocs: Vec<String> = Vec::new();
    let mut i = 0;
    let end_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let end_command = |words: &mut Vec<String>, out: &mut Parsed| {
        if !words.is_empty() {
            out.commands.push(std::mem::take(words));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                if chars[i + 1] != '\n' {
                    word.push(chars[i + 1]);
                    in_word = true;
                }
                i += 2;
                continue;
            }
            '\'' => {
                let close = find(&chars, i + 1, '\'').unwrap_or(chars.len());
                word.extend(&chars[i + 1..close]);
                in_word = true;
                i = close + 1;
                continue;
            }
            '"' => {
                i = double_quoted(&chars, i + 1, &mut word, &mut out.substitutions);
                in_word = true;
                continue;
            }
            '`' => {
                let close = find(&chars, i + 1, '`').unwrap_or(chars.len());
                out.substitutions.push(chars[i + 1..close].iter().collect());
                in_word = true;
                i = close + 1;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let close = matching_paren(&chars, i + 2);
                out.substitutions.push(chars[i + 2..close].iter().collect());
                in_word = true;
                i = close + 1;
                continue;
            }
            '<' if chars.get(i + 1) == Some(&'<') && chars.get(i + 2) != Some(&'<') => {
                // A here-document: its body (the lines up to the delimiter) is data.
                end_word(&mut word, &mut in_word, &mut words);
                let (delimiter, next) = heredoc_delimiter(&chars, i + 2);
                heredocs.push(delimiter);
                i = next;
                continue;
            }
            '\n' if !heredocs.is_empty() => {
                end_word(&mut word, &mut in_word, &mut words);
                end_command(&mut words, &mut out);
                i = skip_heredoc_bodies(&chars, i + 1, &mut heredocs);
                continue;
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                i = find(&chars, i, '\n').unwrap_or(chars.len());
                continue;
            }
            ';' | '&' | '|' | '\n' | '(' | ')' => {
                end_word(&mut word, &mut in_word, &mut words);
                end_command(&mut words, &mut out);
            }
            '{' | '}' if !in_word => {
                // A group's braces are words of their own; read as command boundaries.
                let alone = chars
                    .get(i + 1)
                    .is_none_or(|n| n.is_whitespace() || *n == ';');
                if c == '}' || alone {
                    end_command(&mut words, &mut out);
                } else {
                    word.push(c);
                    in_word = true;
                }
            }
            c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut words),
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut words);
    end_command(&mut words, &mut out);
    out
}

/// The delimiter word after `<<` (or `<<-`), quotes removed, and the index after it.
fn heredoc_delimiter(chars: &[char], mut i: usize) -> (String, usize) {
    if chars.get(i) == Some(&'-') {
        i += 1;
    }
    while chars.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
        i += 1;
    }
    let mut delimiter = String::new();
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>') {
            break;
        }
        if !matches!(c, '\'' | '"' | '\\') {
            delimiter.push(c);
        }
        i += 1;
    }
    (delimiter, i)
}

/// Skips the bodies of the pending here-documents, line by line, from `i` (the start of the
/// line after the one that opened them). Returns where reading resumes.
fn skip_heredoc_bodies(chars: &[char], mut i: usize, pending: &mut Vec<String>) -> usize {
    for delimiter in pending.drain(..) {
        loop {
            if i >= chars.len() {
                return i;
            }
            let end = find(chars, i, '\n').unwrap_or(chars.len());
            let line: String = chars[i..end].iter().collect();
            i = end + 1;
            if line.trim() == delimiter {
                break;
            }
        }
    }
    i
}

fn find(chars: &[char], from: usize, wanted: char) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j] == wanted)
}

/// The index of the `)` closing a `$(` whose content starts at `from`.
fn matching_paren(chars: &[char], from: usize) -> usize {
    let mut depth = 1;
    let mut j = from;
    while j < chars.len() {
        match chars[j] {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
        j += 1;
    }
    chars.len()
}

/// Reads a double-quoted string starting after its `"` into `word`; substitutions inside it still
/// run, so they are collected. Returns the index after the closing quote.
fn double_quoted(chars: &[char], mut i: usize, word: &mut String, subs: &mut Vec<String>) -> usize {
    while i < chars.len() {
        match chars[i] {
            '"' => return i + 1,
            '\\' if i + 1 < chars.len() && matches!(chars[i + 1], '"' | '\\' | '$' | '`') => {
                word.push(chars[i + 1]);
                i += 2;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let close = matching_paren(chars, i + 2);
                subs.push(chars[i + 2..close].iter().collect());
                i = close + 1;
            }
            '`' => {
                let close = find(chars, i + 1, '`').unwrap_or(chars.len());
                subs.push(chars[i + 1..close].iter().collect());
                i = close + 1;
            }
            c => {
                word.push(c);
                i += 1;
            }
        }
    }
    i
}

/// The name of a function that calls itself through a pipe (`:(){ :|:& };:` and its spellings),
/// found outside quotes with all spacing removed.
fn fork_bomb(command: &str) -> Option<String> {
    let bare: String = unquoted(command)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut rest = bare.as_str();
    while let Some(at) = rest.find("(){") {
        let name_start = rest[..at]
            .rfind([';', '&', '|', '(', ')', '{', '}'])
            .map_or(0, |p| p + 1);
        let name = rest[name_start..at].trim_start_matches("function");
        let body = &rest[at + 3..];
        let body = &body[..body.find('}').unwrap_or(body.len())];
        if !name.is_empty() && body.contains(&format!("{name}|{name}")) {
            return Some(name.to_owned());
        }
        rest = &rest[at + 3..];
    }
    keyword_functions(&unquoted(command))
        .into_iter()
        .find(|(name, body)| !name.is_empty() && body.contains(&format!("{name}|{name}")))
        .map(|(name, _)| name)
}

/// `function NAME { ... }` definitions: (name, body) pairs, read from unquoted text.
fn keyword_functions(unquoted: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = unquoted.split_whitespace().collect();
    let mut out = Vec::new();
    for (n, w) in words.iter().enumerate() {
        if *w != "function" {
            continue;
        }
        let Some(name) = words.get(n + 1) else {
            continue;
        };
        let name = name.trim_end_matches("()").trim_end_matches('{');
        let rest = words[n + 2..].concat();
        if let Some(open) = rest.find('{') {
            let body = &rest[open + 1..];
            out.push((
                name.to_owned(),
                body[..body.find('}').unwrap_or(body.len())].to_owned(),
            ));
        }
    }
    out
}

/// `command` with the contents of quoted strings removed.
fn unquoted(command: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Wrappers that run the command given after their own options; the options that take a value.
const WRAPPERS: &[(&str, &[&str])] = &[
    (
        "sudo",
        &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"],
    ),
    ("doas", &["-u", "-C"]),
    ("env", &["-u", "-C", "-S", "--unset", "--chdir"]),
    ("nohup", &[]),
    ("nice", &["-n", "--adjustment"]),
    ("ionice", &["-c", "-n", "-p", "-P", "-u"]),
    ("time", &["-f", "-o"]),
    ("command", &[]),
    ("builtin", &[]),
    ("exec", &["-a"]),
    ("stdbuf", &["-i", "-o", "-e"]),
    ("setsid", &[]),
    ("xargs", &["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"]),
    ("busybox", &[]),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"]),
    ("chroot", &["--userspec", "--groups"]),
];

fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The words from the real program on: assignments and wrappers (with their options) skipped.
fn unwrap(words: &[String]) -> &[String] {
    let mut rest = words;
    loop {
        while rest.first().is_some_and(|w| is_assignment(w)) {
            rest = &rest[1..];
        }
        let Some(first) = rest.first() else {
            return rest;
        };
        let name = program_name(first);
        let Some((_, takes_value)) = WRAPPERS.iter().find(|(w, _)| *w == name) else {
            return rest;
        };
        rest = &rest[1..];
        // `timeout` and `chroot` take one operand (the duration, the new root) before the command.
        let mut positional = usize::from(matches!(name, "timeout" | "chroot"));
        while let Some(w) = rest.first() {
            if w == "--" {
                rest = &rest[1..];
                break;
            }
            if w.starts_with('-') && w.len() > 1 {
                let needs_value = takes_value.contains(&w.as_str());
                rest = &rest[if needs_value { 2 } else { 1 }.min(rest.len())..];
            } else if is_assignment(w) && name == "env" {
                rest = &rest[1..];
            } else if positional > 0 {
                positional -= 1;
                rest = &rest[1..];
            } else {
                break;
            }
        }
    }
}

fn simple_command(words: &[String], depth: usize) -> Result<(), Refusal> {
    let words = unwrap(words);
    let Some(first) = words.first() else {
        return Ok(());
    };
    let program = program_name(first);
    let args = &words[1..];
    let refuse = |reason: &'static str| {
        Err(Refusal {
            command: words.join(" "),
            reason,
        })
    };
    match program {
        "rm" if rm_deletes_root(args) => refuse("deletes the root filesystem"),
        "mkfs" | "mke2fs" => refuse("formats a disk"),
        p if p.starts_with("mkfs.") => refuse("formats a disk"),
        "dd" if args.iter().any(|a| a.starts_with("if=")) => {
            refuse("copies raw data (dd with if= is blocked)")
        }
        "dd" if args.iter().any(|a| writes_device(a)) => refuse("overwrites a device"),
        "shutdown" | "reboot" | "poweroff" | "halt" => {
            refuse("powers the machine off or restarts it")
        }
        "init" | "telinit" if args.first().is_some_and(|a| a == "0" || a == "6") => {
            refuse("powers the machine off or restarts it")
        }
        "systemctl"
            if args
                .iter()
                .any(|a| matches!(a.as_str(), "poweroff" | "reboot" | "halt" | "kexec")) =>
        {
            refuse("powers the machine off or restarts it")
        }
        "sh" | "bash" | "dash" | "zsh" | "ash" | "ksh" | "mksh" => {
            match args
                .iter()
                .position(|a| a.starts_with('-') && a.contains('c'))
            {
                Some(p) => match args.get(p + 1) {
                    Some(script) => check_depth(script, depth + 1),
                    None => Ok(()),
                },
                None => Ok(()),
            }
        }
        "eval" => check_depth(&args.join(" "), depth + 1),
        _ => Ok(()),
    }
}

fn writes_device(operand: &str) -> bool {
    operand
        .strip_prefix("of=")
        .is_some_and(|target| target.starts_with("/dev/") && target != "/dev/null")
}

/// `rm` with a recursive flag on the root, or told to ignore the root's protection.
fn rm_deletes_root(args: &[String]) -> bool {
    let mut recursive = false;
    let mut no_preserve = false;
    let mut targets = Vec::new();
    let mut options_done = false;
    for a in args {
        if options_done || !a.starts_with('-') || a == "-" {
            targets.push(a.as_str());
        } else if a == "--" {
            options_done = true;
        } else if let Some(long) = a.strip_prefix("--") {
            recursive |= long == "recursive";
            no_preserve |= long == "no-preserve-root";
        } else {
            recursive |= a.contains(['r', 'R']);
        }
    }
    recursive && (no_preserve || targets.iter().any(|t| is_root(t)))
}

/// `/`, `//`, `/.`, `/*`, `/./*` ...: the root directory or everything in it.
fn is_root(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    path.split('/')
        .all(|part| part.is_empty() || part == "." || part == "*")
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Commands the guard must refuse.
    const REFUSED: &[&str] = &[
        "rm -rf /",
        "rm -fr /",
        "rm -r -f /",
        "rm -f -r /",
        "rm -R /",
        "rm -Rf /",
        "rm --recursive --force /",
        "rm --force --recursive /",
        "rm -rf --no-preserve-root /",
        "rm --no-preserve-root -rf /",
        "rm -rf --no-preserve-root /home",
        "rm -rf /*",
        "rm -rf //",
        "rm -rf /.",
        "rm -rf /./",
        "rm -rf -- /",
        "rm  -rf   /",
        "rm\t-rf\t/",
        "'rm' -rf /",
        "\"rm\" -rf /",
        "rm '-rf' '/'",
        "rm -rf \"/\"",
        "r\\m -rf /",
        "/bin/rm -rf /",
        "/usr/bin/rm -rf /",
        "sudo rm -rf /",
        "sudo -u root rm -rf /",
        "sudo -E rm -rf /",
        "env rm -rf /",
        "env -i PATH=/bin rm -rf /",
        "LANG=C rm -rf /",
        "nohup rm -rf / &",
        "nice -n 10 rm -rf /",
        "timeout 5 rm -rf /",
        "xargs rm -rf /",
        "busybox rm -rf /",
        "cd /tmp; rm -rf /",
        "cd /tmp && rm -rf /",
        "false || rm -rf /",
        "echo hi | rm -rf /",
        "true & rm -rf /",
        "(rm -rf /)",
        "{ rm -rf /; }",
        "echo $(rm -rf /)",
        "echo `rm -rf /`",
        "echo \"$(rm -rf /)\"",
        "x=$(rm -rf /)",
        "sh -c 'rm -rf /'",
        "bash -c \"rm -rf /\"",
        "bash -lc 'cd / && rm -rf /'",
        "eval rm -rf /",
        "eval 'rm -rf /'",
        "ls\nrm -rf /",
        "mkfs /dev/sda1",
        "mkfs -t ext4 /dev/vda",
        "mkfs.ext4 /dev/vda1",
        "mkfs.xfs -f /dev/sdb",
        "/sbin/mkfs.ext4 /dev/vda",
        "/usr/sbin/mkfs.btrfs /dev/vdb",
        "sudo mkfs.ext4 /dev/vda",
        "mke2fs /dev/vda",
        "echo ok; mkfs.vfat /dev/sdc1",
        "dd if=/dev/zero of=/dev/vda",
        "dd if=/dev/urandom of=/dev/sda bs=1M",
        "dd of=/dev/vda if=/dev/zero",
        "dd bs=4M of=/dev/nvme0n1",
        "dd if=/dev/zero of=/tmp/file bs=1M count=1",
        "sudo dd if=/dev/zero of=/dev/sda",
        "/bin/dd if=/dev/zero of=/dev/vda",
        "cat img | dd of=/dev/vdb",
        ":(){ :|:& };:",
        ":(){ :|: & };:",
        ": () { : | : & } ; :",
        ":(){ :|:&};:",
        "bomb(){ bomb|bomb& };bomb",
        "f() { f | f & }; f",
        "function b { b|b& }; b",
        "shutdown",
        "shutdown -h now",
        "shutdown -r +1",
        "reboot",
        "reboot -f",
        "poweroff",
        "halt",
        "halt -p",
        "/sbin/shutdown now",
        "/sbin/reboot",
        "/usr/sbin/poweroff",
        "sudo reboot",
        "sudo /sbin/halt",
        "init 0",
        "init 6",
        "/sbin/init 0",
        "telinit 6",
        "systemctl poweroff",
        "systemctl reboot",
        "systemctl halt",
        "systemctl --force reboot",
        "sudo systemctl poweroff",
        "apt-get update && reboot",
        "sleep 1; shutdown -h now",
        "echo done | poweroff",
        "sh -c reboot",
        "bash -c 'sleep 1 && poweroff'",
        "$(reboot)",
        "echo `halt`",
    ];

    /// Commands that must pass: harmless text, and close relatives of the refused ones.
    const ALLOWED: &[&str] = &[
        "df -h /",
        "uptime",
        "ls -la /",
        "ls /home/halt",
        "echo \"rm -rf /\"",
        "echo 'rm -rf /'",
        "echo rm -rf /",
        "printf '%s\\n' 'mkfs.ext4 /dev/vda'",
        "grep halt /var/log/syslog",
        "grep -r reboot /etc",
        "grep -rn 'shutdown' /var/log",
        "cat /etc/reboot-required",
        "rm -rf /tmp/build",
        "rm -rf ./build",
        "rm -rf build/",
        "rm -f /",
        "rm /",
        "rm -rf /home/user/cache",
        "rm -r /var/tmp/x",
        "rm -- -rf",
        "find / -name '*.log' -mtime +7",
        "du -sh /var",
        "apt-get update -y",
        "apt-get install -y nginx",
        "systemctl status nginx",
        "systemctl restart nginx",
        "systemctl reload sshd",
        "journalctl -u ssh --no-pager",
        "cat /proc/cpuinfo | grep model",
        "ps aux | head",
        "dd --version",
        "dd bs=1M count=1 of=/dev/null",
        "echo ':(){ :|:& };:'",
        "f() { echo hi; }; f",
        "init --version",
        "telinit q",
        "which shutdown",
        "man reboot",
        "echo $(date)",
        "echo \"today is $(date +%F)\"",
        "sh -c 'echo hello'",
        "bash -c \"uname -a\"",
        "eval echo hi",
        "sudo apt-get upgrade -y",
        "env | sort",
        "nohup ./server &",
        "timeout 5 sleep 10",
        "touch /tmp/halt",
        "mkdir -p /srv/mkfs",
        "cp /etc/hosts /tmp/hosts.bak",
        "tar -czf /tmp/etc.tgz /etc",
        "python3 -c 'print(1)'",
        "curl -s http://127.0.0.1:8080/health",
        "echo reboot > /tmp/notes # not a reboot",
        "# reboot",
        "ls # rm -rf /",
        "cat <<'EOF'\nrm -rf /\nEOF",
    ];

    #[test]
    fn destructive_commands_are_refused_however_they_are_spelled() {
        for cmd in REFUSED {
            assert!(check(cmd).is_err(), "should refuse: {cmd:?}");
        }
    }

    #[test]
    fn harmless_commands_pass() {
        for cmd in ALLOWED {
            assert_eq!(check(cmd), Ok(()), "should allow: {cmd:?}");
        }
    }

    #[test]
    fn the_table_is_large_enough_to_mean_something() {
        assert!(REFUSED.len() + ALLOWED.len() >= 100);
    }

    #[test]
    fn a_refusal_names_what_was_refused() {
        let r = check("cd /tmp && sudo rm -fr --no-preserve-root /").unwrap_err();
        assert_eq!(r.command, "rm -fr --no-preserve-root /");
        assert!(r
            .to_string()
            .contains("Refused `rm -fr --no-preserve-root /`"));
        assert!(check("reboot")
            .unwrap_err()
            .to_string()
            .contains("power API"));
    }
}
