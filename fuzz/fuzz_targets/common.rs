//! What every reader target does with the traces it gets: analyze and render them, so that the
//! whole path from bytes to output is exercised.

use std::io;

use lightstep_analysis::render::{JsonWriter, write_svg, write_text};
use lightstep_analysis::{Mode, Options, Trace, analyze_assembled, assemble};

pub fn consume(trace: Trace) -> io::Result<()> {
    for mode in [Mode::Robust, Mode::Jaeger] {
        let options = Options::new(mode).with_skew_correction(mode == Mode::Robust);
        let assembled = assemble(&trace, &options);
        let analysis = analyze_assembled(&trace, &assembled);
        let window = analysis.end_ns.saturating_sub(analysis.start_ns);
        assert!(analysis.critical_ns() <= window.max(analysis.critical_ns()));
        write_text(&mut io::sink(), &analysis, 40)?;
        write_svg(&mut io::sink(), &trace, &assembled, &analysis)?;
        let mut json = JsonWriter::new(io::sink())?;
        json.trace(&analysis)?;
        json.finish(None)?;
    }
    Ok(())
}
