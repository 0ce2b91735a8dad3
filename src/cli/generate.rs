//! `sgswitch generate`: the man pages and the shell
//! completions, generated from the clap definitions of [`super::Cli`], so they can never
//! drift from the commands: nothing here is hand-written about an option.
//!
//! * `sgswitch generate man DIR` writes `sgswitch.8` and one page per subcommand, nested
//!   ones included (`sgswitch-run.8`, `sgswitch-security-group-rule-create.8`, ...), in
//!   section 8 (system administration: the switch runs as root). The top page and
//!   `sgswitch-run.8` get a FILES section (the packaged paths: config, state, token) and
//!   every page a SEE ALSO section, the only text written here.
//! * `sgswitch generate completions SHELL` prints the bash, zsh or fish completion script;
//!   `--dir DIR` writes all three under the names their shells look up:
//!   `sgswitch` (bash-completion), `_sgswitch` (zsh), `sgswitch.fish` (fish).
//!
//! The generated files are not committed: `packaging/build-deb.sh` runs this command
//! before it builds the package, and this module's tests generate every page, check that
//! each subcommand has one naming each of its options, and render them with groff.
//!
//! Owns: rendering the clap definition into roff and completion scripts. May not touch:
//! the definitions themselves (they are the other command modules') or anything at run
//! time.
//!
//! # Cost of `clap_mangen` (with `roff`) and `clap_complete`
//! Measured on this branch, 2 cores shared with other helpers' builds (load 12–13):
//! * compile: `cargo clean --release -p clap_complete -p clap_mangen -p roff; /usr/bin/time
//!   cargo build --release -p clap_complete -p clap_mangen`: 5.5 s user + 0.3 s sys CPU
//!   (23 s wall under that load; `--timings`: roff 2.5 s, clap_mangen 16.5 s, clap_complete
//!   19.9 s of wall, in parallel), plus this module in the `sgswitch` crate;
//! * size: the `sgswitch` binary, stripped (`strip -o`), 4,946,888 B at the branch's base
//!   and 5,269,088 B with this command (+322,200 B, +6.5 %): the generators of three
//!   shells' scripts and the roff writer. Kept in the binary so that the pages and scripts
//!   always match the binary that is installed, with no build script or second binary.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Subcommand, ValueEnum};
use clap_complete::Shell;
use clap_mangen::Man;

use super::{Cli, EXIT_INVALID, EXIT_OK};

/// The man pages' section: system administration tools and daemons.
pub const SECTION: &str = "8";

/// `sgswitch generate ...`
#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Write sgswitch.8 and one page per subcommand (sgswitch-run.8, ...) into DIR
    Man(ManArgs),
    /// Print a completion script (bash, zsh, fish), or write all three into --dir
    Completions(CompletionArgs),
}

/// Arguments of `sgswitch generate man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The shells `generate completions` writes for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl CompletionShell {
    fn shell(self) -> Shell {
        match self {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }

    /// The file name the shell looks the script up by, for a command `sgswitch`.
    pub fn file_name(self) -> &'static str {
        match self {
            CompletionShell::Bash => "sgswitch",
            CompletionShell::Zsh => "_sgswitch",
            CompletionShell::Fish => "sgswitch.fish",
        }
    }
}

/// Arguments of `sgswitch generate completions`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell whose script to print on standard output
    #[arg(value_enum, required_unless_present = "dir", conflicts_with = "dir")]
    pub shell: Option<CompletionShell>,
    /// Write the scripts of every shell into DIR (sgswitch, _sgswitch, sgswitch.fish)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Run `sgswitch generate ...`.
pub fn run(cmd: &GenerateCommand) -> ExitCode {
    let result = match cmd {
        GenerateCommand::Man(a) => write_man_pages(&a.dir).map(|pages| {
            eprintln!("{} man pages in {}", pages.len(), a.dir.display());
        }),
        GenerateCommand::Completions(a) => match (&a.dir, a.shell) {
            (Some(dir), _) => write_completions(dir).map(|files| {
                eprintln!("{} completion scripts in {}", files.len(), dir.display());
            }),
            (None, Some(shell)) => {
                let mut out = Vec::new();
                completion(shell, &mut out);
                std::io::stdout().write_all(&out)
            }
            (None, None) => unreachable!("clap requires SHELL or --dir"),
        },
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("sgswitch generate: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The command tree as the pages show it: built (so subcommands carry their display
/// names, `sgswitch-run`), without the `help` subcommand.
fn command_tree() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page: (file name, the command it documents), the top command first, hidden
/// subcommands left out (clap_complete does offer them: there are none today).
pub fn pages() -> Vec<(String, clap::Command)> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        out.push((format!("{name}.{SECTION}"), cmd.clone()));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&command_tree(), &mut out);
    out
}

/// Render one page: clap_mangen's sections, then FILES (top page and `run`) and SEE ALSO.
fn render_page(file: &str, cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut out = Vec::new();
    Man::new(cmd)
        .section(SECTION)
        .manual("System Administration")
        .source(concat!("sgswitch ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    if name == "sgswitch" || name == "sgswitch-run" {
        out.extend_from_slice(FILES.as_bytes());
    }
    let see_also = if name == "sgswitch" {
        let subs: Vec<String> = pages()
            .into_iter()
            .map(|(f, _)| f)
            .filter(|f| f != file)
            .map(|f| {
                let (page, sec) = f.rsplit_once('.').expect("NAME.SECTION");
                format!("\\fB{}\\fR({sec})", page.replace('-', "\\-"))
            })
            .collect();
        subs.join(", ")
    } else {
        format!("\\fBsgswitch\\fR({SECTION}), \\fBsystemctl\\fR(1)")
    };
    writeln!(out, ".SH \"SEE ALSO\"\n{see_also}")?;
    Ok(out)
}

/// The FILES section: where the Debian package and its systemd unit keep things.
const FILES: &str = r#".SH FILES
.TP
\fI/etc/sgswitch/sgswitch.toml\fR
The config the packaged service runs (\fBsgswitch run \-\-config\fR); \fBsystemctl reload sgswitch\fR re\-reads it.
.TP
\fI/etc/default/sgswitch\fR
Extra \fBsgswitch run\fR flags for the service (SGSWITCH_OPTS).
.TP
\fI/var/lib/sgswitch/\fR
The service's state directory (\fB\-\-state\-dir\fR): the policy changed through the API survives restarts.
.TP
\fI/run/sgswitch/api\-token\fR
The management API's token, created at first start (mode 0600); the client commands read it.
"#;

/// Write every page into `dir`; returns their paths.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (file, cmd) in pages() {
        let page = render_page(&file, cmd)?;
        let path = dir.join(&file);
        fs::write(&path, page)?;
        written.push(path);
    }
    Ok(written)
}

/// One shell's completion script.
fn completion(shell: CompletionShell, out: &mut Vec<u8>) {
    clap_complete::generate(shell.shell(), &mut command_tree(), "sgswitch", out);
}

/// Write the scripts of every shell into `dir` under their looked-up names.
pub fn write_completions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for shell in CompletionShell::value_variants() {
        let mut out = Vec::new();
        completion(*shell, &mut out);
        let path = dir.join(shell.file_name());
        fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sgswitch-gen-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    /// The long option names a command's page must show (hidden ones and clap's own
    /// --help/--version aside).
    fn options(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .filter(|l| l != "--help" && l != "--version")
            .collect()
    }

    /// The roff escapes a page writes a `-` as.
    fn unescape(roff: &str) -> String {
        roff.replace("\\-", "-")
    }

    #[test]
    fn every_subcommand_has_a_page_naming_its_options() {
        let dir = temp_dir("man");
        let written = write_man_pages(&dir).unwrap();
        let tree = command_tree();
        // Every visible subcommand, nested ones too, has its page.
        let mut expected = vec!["sgswitch.8".to_string()];
        for sub in tree.get_subcommands().filter(|s| !s.is_hide_set()) {
            expected.push(format!("sgswitch-{}.8", sub.get_name()));
            for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
                expected.push(format!(
                    "sgswitch-{}-{}.8",
                    sub.get_name(),
                    nested.get_name()
                ));
            }
        }
        for page in &expected {
            assert!(dir.join(page).is_file(), "no page {page}");
        }
        assert!(written.len() >= expected.len());
        // Each page names each of its command's options.
        for (file, cmd) in pages() {
            let text = unescape(&fs::read_to_string(dir.join(&file)).unwrap());
            assert!(text.starts_with(".ie") || text.contains(".TH"), "{file}");
            for opt in options(&cmd) {
                assert!(text.contains(&opt), "{file} does not name {opt}");
            }
        }
        let run = unescape(&fs::read_to_string(dir.join("sgswitch-run.8")).unwrap());
        for must in [
            "--config",
            "--state-dir",
            "/etc/sgswitch/sgswitch.toml",
            "FILES",
        ] {
            assert!(run.contains(must), "sgswitch-run.8 lacks {must}");
        }
        let top = unescape(&fs::read_to_string(dir.join("sgswitch.8")).unwrap());
        assert!(
            top.contains("sgswitch-run"),
            "the top page lists the subcommands"
        );
        groff_renders(&dir, &expected);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// groff renders every page without a warning (`-ww`; `-k` runs preconv for the
    /// UTF-8 of the help texts, as man does), into text that names the command. groff is in the CI's packages (`groff-base`): under CI=true its absence
    /// fails the test; elsewhere the rendering is skipped with a message.
    fn groff_renders(dir: &Path, pages: &[String]) {
        let probe = std::process::Command::new("groff")
            .arg("--version")
            .output();
        if probe.is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "groff is not installed (apt-get install groff-base)"
            );
            eprintln!("SKIPPED: rendering the man pages: groff is not installed");
            return;
        }
        for page in pages {
            let out = std::process::Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww"])
                .arg(dir.join(page))
                .env("LC_ALL", "C.UTF-8")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{page}: {stderr}"
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let name = page.trim_end_matches(".8");
            assert!(text.contains(name), "{page} renders without its name");
        }
    }

    #[test]
    fn completions_for_every_shell() {
        let dir = temp_dir("completions");
        let written = write_completions(&dir).unwrap();
        assert_eq!(written.len(), 3);
        let bash = fs::read_to_string(dir.join("sgswitch")).unwrap();
        assert!(bash.contains("complete -F _sgswitch"), "bash script");
        let zsh = fs::read_to_string(dir.join("_sgswitch")).unwrap();
        assert!(zsh.starts_with("#compdef sgswitch"), "zsh script");
        let fish = fs::read_to_string(dir.join("sgswitch.fish")).unwrap();
        assert!(fish.contains("complete -c sgswitch"), "fish script");
        for script in [&bash, &zsh, &fish] {
            for word in ["security-group", "--state-dir", "conntrack"] {
                assert!(script.contains(word), "a script lacks {word}");
            }
            assert!(
                script.contains("completions"),
                "a script lacks `generate completions`"
            );
        }
        // bash parses its script.
        if let Ok(out) = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.join("sgswitch"))
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generate_parses() {
        use clap::Parser;
        let c = Cli::try_parse_from(["sgswitch", "generate", "completions", "zsh"]).unwrap();
        assert!(matches!(
            c.command,
            crate::cli::Command::Generate(GenerateCommand::Completions(CompletionArgs {
                shell: Some(CompletionShell::Zsh),
                dir: None
            }))
        ));
        assert!(Cli::try_parse_from(["sgswitch", "generate", "completions"]).is_err());
        assert!(
            Cli::try_parse_from(["sgswitch", "generate", "completions", "bash", "--dir", "x"])
                .is_err()
        );
    }
}
