import ArgumentParser

/// A failure the user must act on: printed as `error: MESSAGE` on standard error, exit status 1.
struct ToolFailure: Error, CustomStringConvertible {
  var description: String

  init(_ message: String) {
    description = message
  }
}
