//! `rkctl config`: `use-context`, `get-contexts`, `current-context`, `view`. These
//! read and write kubeconfig files only; they never contact a server.

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::error::Error;
use crate::kubeconfig::{self, KubeconfigError};
use crate::output::{self, Format, OutputError, PrintOptions, Printer};
use crate::tabwriter::TabWriter;

pub fn run(g: &GlobalArgs, cmd: &ConfigCommand) -> Result<(), Error> {
    let kc = kubeconfig::load(g.kubeconfig.as_deref())?;
    match cmd {
        ConfigCommand::UseContext { name } => {
            kc.use_context(name)?;
            output::print(&format!("Switched to context {name:?}.\n"));
        }
        ConfigCommand::CurrentContext => match kc.merged.current_context.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => output::print(&format!("{c}\n")),
            None => return Err(KubeconfigError::NoCurrentContext.into()),
        },
        ConfigCommand::GetContexts { name, output: format, no_headers } => {
            let current = kc.merged.current_context.clone().unwrap_or_default();
            let contexts: Vec<_> =
                kc.merged.contexts.iter().filter(|c| name.as_ref().is_none_or(|n| *n == c.name)).collect();
            if let Some(n) = name
                && contexts.is_empty()
            {
                return Err(KubeconfigError::NoSuchContext(n.clone()).into());
            }
            if let Some(f) = format.as_ref().filter(|f| **f != Format::Name) {
                return Err(OutputError::Unsupported {
                    format: f.to_string(),
                    command: "config get-contexts",
                    supported: "-o name",
                }
                .into());
            }
            if *format == Some(Format::Name) {
                output::print(&contexts.iter().map(|c| format!("{}\n", c.name)).collect::<String>());
                return Ok(());
            }
            let mut w = TabWriter::for_tables();
            if !no_headers {
                w.write("CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE\n");
            }
            for c in contexts {
                let ctx = c.context.clone().unwrap_or_default();
                w.write(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    if c.name == current { "*" } else { "" },
                    c.name,
                    ctx.cluster,
                    ctx.user.unwrap_or_default(),
                    ctx.namespace.unwrap_or_default()
                ));
            }
            output::print(&w.flush());
        }
        ConfigCommand::View { raw, minify, output: format } => {
            let printer = match format {
                Some(Format::Wide) => {
                    let e = OutputError::Unsupported {
                        format: "wide".into(),
                        command: "config view",
                        supported: "yaml, json or jsonpath=TEMPLATE",
                    };
                    return Err(e.into());
                }
                Some(f) => Printer::new(f, PrintOptions::default())?,
                None => None,
            };
            let v = kc.view(*raw, *minify, g.context.as_deref())?;
            output::print(&match printer {
                Some(p) => p.render(&v)?,
                None => output::to_yaml(&v),
            });
        }
    }
    Ok(())
}
