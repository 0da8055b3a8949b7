/// An error from reading, validating or writing safetensors files and checkpoints.
///
/// Every error names the rule that was broken (``Code``), and where it applies the file and the
/// tensor, so that a message alone is enough to find the problem.
public struct SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// The file is shorter than the 8-byte header length.
    case headerTooSmall = "header-too-small"
    /// The header length is over 100,000,000 bytes.
    case headerTooLarge = "header-too-large"
    /// The header length points past the end of the file.
    case headerLength = "header-length"
    /// The header is not valid UTF-8.
    case headerEncoding = "header-utf8"
    /// The header is not valid JSON.
    case headerSyntax = "header-json"
    /// The header nests deeper than allowed.
    case headerDepth = "header-depth"
    /// The header is JSON but not an object.
    case headerNotObject = "header-not-object"
    /// An object in the header has the same key twice.
    case duplicateKey = "duplicate-key"
    /// `__metadata__` is not an object of strings.
    case metadataNotStrings = "metadata-not-strings"
    /// A tensor entry is not an object with exactly `dtype`, `shape` and `data_offsets`.
    case tensorEntry = "tensor-entry"
    /// The dtype is not one the reference implementation knows.
    case unknownDType = "unknown-dtype"
    /// The shape is not an array of non-negative integers.
    case invalidShape = "invalid-shape"
    /// `data_offsets` is not a pair of non-negative integers in order.
    case invalidOffsets = "invalid-offsets"
    /// Element count times dtype size overflows.
    case sizeOverflow = "size-overflow"
    /// A sub-byte dtype's elements do not fill a whole number of bytes.
    case partialByte = "partial-byte"
    /// The byte range does not match the shape and dtype.
    case sizeMismatch = "size-mismatch"
    /// The tensors' byte ranges leave a gap, overlap or do not start at 0.
    case offsetsNotContiguous = "offsets-not-contiguous"
    /// The tensor data does not end exactly at the end of the file.
    case incompleteBuffer = "incomplete-buffer"
    /// A tensor was asked for that is not in the file or checkpoint.
    case tensorNotFound = "tensor-not-found"
    /// `model.safetensors.index.json` is malformed.
    case indexFormat = "index-format"
    /// The index names a shard file with a path component or an absolute path.
    case unsafeShardName = "unsafe-shard-name"
    /// The index names a shard that does not exist.
    case missingShard = "missing-shard"
    /// The index and the shards disagree about where a tensor is.
    case indexMismatch = "index-mismatch"
    /// The same tensor name occurs in two shards.
    case duplicateTensor = "duplicate-tensor"
    /// A directory holds neither `model.safetensors` nor an index.
    case notACheckpoint = "not-a-checkpoint"
    /// A path that must be a regular file is a FIFO, device, socket or directory.
    case notRegularFile = "not-regular-file"
    /// The caller's tensors are inconsistent (writing).
    case invalidArgument = "invalid-argument"
    /// A system call failed.
    case io = "io"
  }

  /// The rule that was broken.
  public var code: Code
  /// What is wrong, in words.
  public var message: String
  /// The file the problem is in, if any.
  public var file: String?
  /// The tensor the problem is about, if any.
  public var tensor: String?

  /// Creates an error.
  public init(_ code: Code, _ message: String, file: String? = nil, tensor: String? = nil) {
    self.code = code
    self.message = message
    self.file = file
    self.tensor = tensor
  }

  /// `FILE: tensor 'NAME': MESSAGE [rule CODE]`, leaving out what is not known.
  public var description: String {
    var text = ""
    if let file { text += "\(file): " }
    if let tensor { text += "tensor '\(tensor)': " }
    return text + message + " [rule \(code.rawValue)]"
  }

  /// The same error, with the file filled in when it was not known where it was raised.
  func inFile(_ path: String) -> SafeTensorsError {
    var copy = self
    if copy.file == nil { copy.file = path }
    return copy
  }
}
