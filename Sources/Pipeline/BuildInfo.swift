import CLZ4

/// What this build of safeshard is and what it was linked with.
public enum BuildInfo {
  /// safeshard's version.
  public static let version = "0.1.0"

  /// The version of the liblz4 this process runs with (used for spill compression).
  public static var lz4Version: String { String(cString: LZ4_versionString()) }
}
