//! Every example's modelport.yaml parses, and its paths point at real files.

use std::path::Path;

use modelport_core::spec::DeploymentSpec;

#[test]
fn every_example_spec_parses() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("modelport.yaml");
        if !file.exists() {
            continue;
        }
        let spec = DeploymentSpec::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            spec.name.as_str(),
            dir.file_name().unwrap().to_str().unwrap()
        );
        assert!(
            spec.model_path().is_file(),
            "{}",
            spec.model_path().display()
        );
        assert!(spec.samples_path().unwrap().is_file());
        seen += 1;
    }
    assert_eq!(
        seen, 6,
        "iris, forest, mlp, cnn, digits-cnn and text-classifier"
    );
}
