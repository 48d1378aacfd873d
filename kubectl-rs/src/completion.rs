//! `rkctl completion bash|zsh|fish|powershell`: a shell completion script generated
//! from the command-line definitions in `cli.rs` (clap_complete), so it always
//! knows every subcommand and flag of this build.

use crate::cli::{Cli, CompletionArgs, CompletionShell};
use crate::error::Error;
use clap::CommandFactory;
use clap_complete::Shell;

pub fn run(args: &CompletionArgs) -> Result<(), Error> {
    crate::output::print(&script(args.shell));
    Ok(())
}

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rkctl", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_know_the_commands_and_flags() {
        let bash = script(CompletionShell::Bash);
        assert!(bash.contains("complete -F _rkctl") && bash.contains("rkctl__subcmd__wait"), "bash script");
        assert!(bash.contains("--for") && bash.contains("cluster-info"), "bash script");
        let zsh = script(CompletionShell::Zsh);
        assert!(zsh.starts_with("#compdef rkctl") && zsh.contains("'--for=[What to wait for"), "zsh script");
        let fish = script(CompletionShell::Fish);
        assert!(fish.contains("complete -c rkctl") && fish.contains("-l for"), "fish script");
    }
}
