//! `sgswitch bench classify`: the classifier on a ClassBench rule set and trace.
//!
//! Owns: the bench command's arguments and its report lines. May not measure anything
//! itself: `bench::classbench` loads, generates and measures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_INVALID, EXIT_OK};

/// `sgswitch bench ...`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Classify a ClassBench trace with a ClassBench rule set compiled as security-group rules
    #[command(
        long_about = "Read a ClassBench rule file and trace in the format DPDK's \
dpdk-test-acl reads (rules `@SRC/LEN DST/LEN SPLO : SPHI DPLO : DPHI PROTO/MASK`, trace lines \
`0xSRC 0xDST SPORT DPORT PROTO`), compile the rules as one port's ingress security-group rules \
(the source prefix is the remote; the destination is the port itself and is ignored), classify \
the trace for about a second, and print lookups per second and cycles per lookup. By default \
each key is classified alone through `CompiledPolicy::allows`, as the pipeline classifies each \
new connection; --burst N > 1 measures `classify_burst` instead (not the shipped path). A \
rule whose source-port range is not `0 : 65535` cannot be a security-group rule and is \
rejected.\n\n\
Without files, --generate N makes a deterministic N-rule set and trace (--sg: \
security-group shaped, tcp/udp only, about 55-65 % of the keys matching, as benches/acl-ab.sh \
uses; --ipv6: IPv6 prefixes and addresses). --results FILE writes one line per trace key, \
1 (allowed) or 0, for a differential check against another classifier on the same files. \
The report gives the bytes of the compiled lookup structure per rule."
    )]
    Classify(ClassifyArgs),
}

/// Arguments of `sgswitch bench classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// ClassBench rule file
    #[arg(long, value_name = "RULES", requires = "trace")]
    pub classbench: Option<PathBuf>,
    /// ClassBench trace file
    #[arg(long, value_name = "TRACE", requires = "classbench")]
    pub trace: Option<PathBuf>,
    /// Generate N rules (and a 100,000-packet trace) instead of reading files
    #[arg(long, value_name = "N", conflicts_with = "classbench")]
    pub generate: Option<usize>,
    /// Write the generated rule and trace files to DIR (rules.txt, trace.txt)
    #[arg(long, value_name = "DIR", requires = "generate")]
    pub write: Option<PathBuf>,
    /// Generate security-group shaped files (tcp/udp rules, about 55-65 % of the keys matching)
    #[arg(long, requires = "generate")]
    pub sg: bool,
    /// Generate IPv6 rules and trace
    #[arg(long, requires = "generate")]
    pub ipv6: bool,
    /// Write one line per trace key to FILE: 1 if the compiled rules allow it, else 0
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Keys per classify call: 1 = `allows` per key (what the pipeline runs); N > 1 =
    /// `classify_burst` (not the shipped path)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub burst: u16,
    /// Also measure the linear (one rule after another) classifier
    #[arg(long)]
    pub linear: bool,
}

/// Run `sgswitch bench classify`.
pub fn run_classify(args: &ClassifyArgs) -> ExitCode {
    use sgswitch::bench::classbench;
    use sgswitch::classifier::LinearPolicy;
    let loaded = match (&args.classbench, &args.trace, args.generate) {
        (Some(r), Some(t), _) => classbench::load(r, t).map_err(|e| e.to_string()),
        (_, _, Some(n)) => {
            let opt = if args.sg {
                classbench::GenOptions::sg(args.ipv6)
            } else {
                classbench::GenOptions {
                    ipv6: args.ipv6,
                    ..classbench::GenOptions::CLASSIC
                }
            };
            let g = classbench::generate_with(n, 100_000, 42, opt);
            if let Some(dir) = &args.write {
                let w = std::fs::create_dir_all(dir)
                    .and_then(|_| std::fs::write(dir.join("rules.txt"), &g.rules))
                    .and_then(|_| std::fs::write(dir.join("trace.txt"), &g.trace));
                if let Err(e) = w {
                    eprintln!("sgswitch: bench classify: {}: {e}", dir.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            }
            classbench::parse_rules(&g.rules)
                .and_then(|r| Ok((r, classbench::parse_trace(&g.trace)?)))
                .map_err(|e| e.to_string())
        }
        _ => Err("give --classbench RULES --trace TRACE, or --generate N".to_string()),
    };
    let (rules, trace) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sgswitch: bench classify: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(path) = &args.results {
        let text = match classbench::verdicts(&rules, &trace) {
            Ok(v) => v
                .iter()
                .map(|&b| if b { "1\n" } else { "0\n" })
                .collect::<String>(),
            Err(e) => {
                eprintln!("sgswitch: bench classify: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("sgswitch: bench classify: {}: {e}", path.display());
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let report = match classbench::run(&rules, &trace, args.burst as usize) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sgswitch: bench classify: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let show = |name: &str, r: &classbench::ClassbenchReport| {
        println!(
            "{name:9} rules {:>6}  trace {:>7}  burst {:>3}  {:>8.2} M lookups/s  {:>7} cycles/lookup  matched {}/{}",
            r.rules,
            r.trace_len,
            r.burst,
            r.lookups_per_sec / 1e6,
            r.cycles_per_lookup.map_or("-".to_string(), |c| format!("{c:.1}")),
            r.matched,
            r.trace_len
        );
    };
    println!("compile: {:.3} ms", report.compile_seconds * 1e3);
    let per_rule = |b: usize| b as f64 / report.rules.max(1) as f64;
    println!(
        "memory: {} bytes for allows ({:.1} bytes/rule), {} bytes attribution ({:.1} bytes/rule), \
         at most {} search rounds",
        report.bytes,
        per_rule(report.bytes),
        report.attribution_bytes,
        per_rule(report.attribution_bytes),
        report.search_rounds
    );
    show("compiled", &report);
    if args.linear {
        let model = match classbench::to_model(&rules) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("sgswitch: bench classify: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        };
        let lin = LinearPolicy::new(&model, 1);
        match classbench::measure(
            &lin,
            classbench::PORT,
            &trace,
            args.burst as usize,
            std::time::Duration::from_secs(1),
        ) {
            Ok(r) => show("linear", &r),
            Err(e) => eprintln!("sgswitch: bench classify: {e}"),
        }
    }
    ExitCode::from(EXIT_OK)
}
