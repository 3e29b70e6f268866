/// Restore's version, "MAJOR.MINOR.PATCH": what `rrun --version`, `convert --version` and
/// libRestore's `restore_version()` report.
public enum RestoreVersion {
    public static let string: StaticString = "0.1.0"
}
