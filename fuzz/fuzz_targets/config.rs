//! The node's configuration file: `unseen_node::config::NodeConfig::parse`.
//!
//! A file that parses must survive being saved (as `NodeConfig::save` writes
//! it) and parsed again unchanged; one that does not must get an error that
//! names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use unseen_node::config::NodeConfig;

fuzz_target!(|data: &[u8]| {
    // The node reads the file with `read_to_string`, which refuses non-UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzzed/unseen.toml");
    match NodeConfig::parse(text, path) {
        Ok(config) => {
            let saved = toml::to_string_pretty(&config).expect("a parsed config serializes");
            let again = NodeConfig::parse(&saved, path)
                .unwrap_or_else(|e| panic!("the saved config does not parse: {e}\n{saved}"));
            assert_eq!(again, config, "saving changed the config:\n{saved}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("fuzzed/unseen.toml"), "{message}");
        }
    }
});
