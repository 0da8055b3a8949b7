import SafeTensors
import TorchAO

/// What `safeshard inspect` shows of a checkpoint, as a table or as JSON.
struct InspectReport {
  struct FileSummary {
    var name: String
    var tensorCount: Int
    var dataBytes: Int
    /// Metadata keys that are not torchao tensor descriptions, with their values.
    var plainMetadata: [(key: String, value: String)]
    /// torchao `_type` → how many metadata entries describe a tensor of that type.
    var torchAOTypes: [(type: String, count: Int)]
  }

  /// What the files are (``Checkpoint/format``).
  var format: String
  var files: [FileSummary]
  /// The files summarized in ``files``, in the same order: their headers list the tensors.
  private var inputs: [SafeTensorsFile]
  /// The torchao weights, when the checkpoint is torchao's and decodes.
  var weights: [QuantizedWeight]

  init(_ checkpoint: Checkpoint) {
    weights =
      (try? TorchAOCheckpoint(checkpoint, storedName: TorchAOCheckpoint.storedNames(ofModelAt: checkpoint.path)))?
      .weights ?? []
    format = weights.isEmpty || checkpoint.format != "safetensors" ? checkpoint.format : "torchao"
    inputs = checkpoint.files
    // The shards of a torchao checkpoint carry the same metadata: summarize it once.
    var previous: (metadata: [String: String]?, summary: FileSummary)?
    files = checkpoint.files.map { file in
      var summary: FileSummary
      if let previous, Self.sameBytes(previous.metadata, file.header.metadata) {
        summary = previous.summary
      } else {
        summary = Self.summary(of: file.header.metadata)
      }
      summary.name = Self.fileName(file.path)
      summary.tensorCount = file.header.tensors.count
      summary.dataBytes = file.header.dataLength
      previous = (file.header.metadata, summary)
      return summary
    }
  }

  /// Whether `a` and `b` hold the same keys and values byte for byte (`String`'s `==` is
  /// canonical equivalence; the summary shows the bytes).
  private static func sameBytes(_ a: [String: String]?, _ b: [String: String]?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return a.count == b.count
      && a.allSatisfy { key, value in
        guard let index = b.index(forKey: key) else { return false }
        return ExactName(b[index].key) == ExactName(key) && ExactName(b[index].value) == ExactName(value)
      }
  }

  /// The summary of a file's `__metadata__`, name and counts left empty.
  private static func summary(of metadata: [String: String]?) -> FileSummary {
    var plain: [(String, String)] = []
    var counts: [String: Int] = [:]
    // torchao's entries repeat a few texts (one per shape and scheme): decode each text once.
    var decoded: [(text: String, subclass: String?)] = []
    for (key, value) in metadata ?? [:] {
      guard key != "tensor_names" else {
        plain.append((key, value))
        continue
      }
      let subclass: String??
      if let known = decoded.first(where: { ExactName($0.text) == ExactName(value) }) {
        subclass = known.subclass
      } else if let entry = try? TensorDescription(decoding: value, tensor: key) {
        subclass = entry.subclass
        if decoded.count < 64 { decoded.append((value, entry.subclass)) }
      } else {
        subclass = nil
      }
      if let subclass {
        counts[subclass ?? "Tensor", default: 0] += 1
      } else {
        plain.append((key, value))
      }
    }
    // Only the plain keys are listed, in order: sorted here, not the 100 000 torchao entries.
    // (The keys are distinct as `String`s, so the order is the same whichever way they came.)
    plain.sort { $0.0 < $1.0 }
    return FileSummary(
      name: "", tensorCount: 0, dataBytes: 0,
      plainMetadata: plain, torchAOTypes: counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
  }

  var tensorCount: Int { files.reduce(0) { $0 + $1.tensorCount } }
  var totalBytes: Int { inputs.reduce(0) { $0 + $1.header.tensors.reduce(0) { $0 + $1.byteCount } } }
  var totalParameters: Int { inputs.reduce(0) { $0 + $1.header.tensors.reduce(0) { $0 + $1.elementCount } } }

  /// Calls `body` with every tensor, the name of its file and how it is read when that is more
  /// than a copy of its bytes (a pickle input), file by file in data order.
  private func forEachTensor(_ body: (_ tensor: TensorInfo, _ file: String, _ note: String?) -> Void) {
    for (input, summary) in zip(inputs, files) {
      for tensor in input.header.tensors { body(tensor, summary.name, input.readingNote(of: tensor.name)) }
    }
  }

  static func fileName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
  }

  /// The report as a text table, in UTF-8 bytes: a checkpoint may list 300 000 tensors. One
  /// pass measures the columns, a second writes the rows; no cell is kept in between.
  func table() -> [UInt8] {
    let header = ["name", "dtype", "shape", "bytes", "file"]
    let fileNames = files.map(\.name.escapingControlCharacters)
    var widths = header.map(\.count)
    for (input, fileName) in zip(inputs, fileNames) {
      widths[4] = max(widths[4], input.header.tensors.isEmpty ? 0 : Self.width(fileName))
      for tensor in input.header.tensors {
        widths[0] = max(widths[0], Self.width(tensor.name.escapingControlCharacters))
        widths[1] = max(widths[1], tensor.dtype.rawValue.utf8.count)
        widths[2] = max(widths[2], Self.shapeWidth(tensor.shape))
        widths[3] = max(widths[3], Self.digits(tensor.byteCount))
      }
    }
    var text: [UInt8] = []
    text.reserveCapacity((tensorCount + 1) * (widths.reduce(0, +) + 2 * header.count))
    func spaces(_ count: Int) { text.append(contentsOf: repeatElement(UInt8(ascii: " "), count: count)) }
    /// Pads a left-aligned cell of `width` characters in `column`, and the gap after it.
    func pad(_ width: Int, _ column: Int) { spaces(widths[column] - width + 2) }
    func endLine() {
      while text.last == UInt8(ascii: " ") { text.removeLast() }
      text.append(UInt8(ascii: "\n"))
    }
    for column in 0..<3 {
      text.append(contentsOf: header[column].utf8)
      pad(header[column].count, column)
    }
    spaces(widths[3] - header[3].count)  // bytes are right-aligned
    text.append(contentsOf: "\(header[3])  \(header[4])".utf8)
    endLine()
    for (input, fileName) in zip(inputs, fileNames) {
      for tensor in input.header.tensors {
        let name = tensor.name.escapingControlCharacters
        name.appendUTF8(to: &text)
        pad(Self.width(name), 0)
        tensor.dtype.rawValue.appendUTF8(to: &text)
        pad(tensor.dtype.rawValue.utf8.count, 1)
        Self.appendShape(tensor.shape, to: &text)
        pad(Self.shapeWidth(tensor.shape), 2)
        spaces(widths[3] - Self.digits(tensor.byteCount))
        String(tensor.byteCount).appendUTF8(to: &text)
        spaces(2)
        fileName.appendUTF8(to: &text)
        endLine()
      }
    }
    var tail =
      "\n\(tensorCount) tensors, \(totalParameters) parameters, \(totalBytes) bytes (\(ByteFormat.human(totalBytes)))"
    tail += " in \(files.count) file\(files.count == 1 ? "" : "s") (\(format))\n"
    forEachTensor { tensor, _, note in
      if let note { tail += "  \(tensor.name.escapingControlCharacters): \(note)\n" }
    }
    for file in files {
      tail += "\n\(file.name.escapingControlCharacters): \(file.tensorCount) tensors, \(file.dataBytes) data bytes\n"
      if file.plainMetadata.isEmpty && file.torchAOTypes.isEmpty { tail += "  no __metadata__\n" }
      for (key, value) in file.plainMetadata {
        tail += "  \(key.escapingControlCharacters) = \(Self.abbreviate(value).escapingControlCharacters)\n"
      }
      if !file.torchAOTypes.isEmpty {
        let total = file.torchAOTypes.reduce(0) { $0 + $1.count }
        let kinds = file.torchAOTypes.map { "\($0.type) ×\($0.count)" }.joined(separator: ", ")
        tail += "  torchao: \(total) tensor entries: \(kinds)\n"
      }
    }
    if !weights.isEmpty {
      tail += "\ntorchao weights (\(weights.count)):\n"
      tail +=
        "  (recipes that quantize, and dequantize, read each dequantized to its dtype; reshard copies its parts)\n"
    }
    text.append(contentsOf: tail.utf8)
    let names = weights.map(\.name.escapingControlCharacters)
    let width = names.map(Self.width).max() ?? 0
    // Consecutive weights of the same description and shape share their summary.
    var last: (description: TensorDescription, shape: [Int], summary: String)?
    for (weight, name) in zip(weights, names) {
      let summary: String
      if let last, last.shape == weight.shape, last.description == weight.description {
        summary = last.summary
      } else {
        summary = weight.summary
        last = (weight.description, weight.shape, summary)
      }
      spaces(2)
      text.append(contentsOf: name.utf8)
      spaces(width - Self.width(name) + 2)
      text.append(contentsOf: summary.utf8)
      text.append(UInt8(ascii: "\n"))
    }
    return text
  }

  /// The number of characters of a table cell. Cells are escaped (no `\r`), so one of ASCII
  /// bytes has a character a byte, counted without walking grapheme clusters.
  static func width(_ cell: String) -> Int {
    cell.isPrintableASCII || cell.utf8.allSatisfy({ $0 < 0x80 && $0 != 0x0D }) ? cell.utf8.count : cell.count
  }

  /// The number of decimal digits of `value` (≥ 0).
  static func digits(_ value: Int) -> Int {
    var count = 1
    var rest = value
    while rest >= 10 {
      rest /= 10
      count += 1
    }
    return count
  }

  /// The characters of `[a, b, …]` for `shape`.
  static func shapeWidth(_ shape: [Int]) -> Int {
    shape.reduce(2 + 2 * max(shape.count - 1, 0)) { $0 + digits($1) }
  }

  /// Appends `[a, b, …]` for `shape`.
  static func appendShape(_ shape: [Int], to text: inout [UInt8]) {
    text.append(UInt8(ascii: "["))
    for (axis, length) in shape.enumerated() {
      if axis > 0 { text.append(contentsOf: ", ".utf8) }
      String(length).appendUTF8(to: &text)
    }
    text.append(UInt8(ascii: "]"))
  }

  static func abbreviate(_ value: String) -> String {
    value.count <= 72 ? value : String(value.prefix(69)) + "… (\(value.utf8.count) bytes)"
  }

  /// The report as one compact JSON object, in UTF-8 bytes: what ``JSONWriter`` writes for it, written straight
  /// to bytes (a checkpoint may list 300 000 tensors and 100 000 weights).
  func json() -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(tensorCount * 128 + weights.count * 256)
    func append(string: String) { JSONWriter.appendString(string, style: .compact, to: &bytes) }
    func append(key: String) {
      append(string: key)
      bytes.append(UInt8(ascii: ":"))
    }
    func append(number: Int) { bytes.append(contentsOf: String(number).utf8) }
    func append(shape: [Int]) {
      bytes.append(UInt8(ascii: "["))
      for (axis, length) in shape.enumerated() {
        if axis > 0 { bytes.append(UInt8(ascii: ",")) }
        append(number: length)
      }
      bytes.append(UInt8(ascii: "]"))
    }
    bytes.append(contentsOf: #"{"format":"#.utf8)
    append(string: format)
    bytes.append(contentsOf: #","tensors":["#.utf8)
    var first = true
    forEachTensor { tensor, file, note in
      bytes.append(contentsOf: (first ? #"{"name":"# : #",{"name":"#).utf8)
      first = false
      append(string: tensor.name)
      bytes.append(contentsOf: #","dtype":"#.utf8)
      append(string: tensor.dtype.rawValue)
      bytes.append(contentsOf: #","shape":"#.utf8)
      append(shape: tensor.shape)
      bytes.append(contentsOf: #","bytes":"#.utf8)
      append(number: tensor.byteCount)
      bytes.append(contentsOf: #","file":"#.utf8)
      append(string: file)
      bytes.append(contentsOf: #","note":"#.utf8)
      if let note { append(string: note) } else { bytes.append(contentsOf: "null".utf8) }
      bytes.append(UInt8(ascii: "}"))
    }
    let fileValues: [JSONValue] = files.map { file in
      .object([
        JSONMember("file", .string(file.name)),
        JSONMember("tensors", .number(String(file.tensorCount))),
        JSONMember("data_bytes", .number(String(file.dataBytes))),
        JSONMember("metadata", .object(file.plainMetadata.map { JSONMember($0.key, .string($0.value)) })),
        JSONMember("torchao_types", .object(file.torchAOTypes.map { JSONMember($0.type, .number(String($0.count))) })),
      ])
    }
    bytes.append(contentsOf: #"],"files":"#.utf8)
    JSONWriter.append(.array(fileValues), to: &bytes)
    bytes.append(contentsOf: #","torchao_weights":["#.utf8)
    // Consecutive weights of the same description and shape share their summary.
    var last: (description: TensorDescription, shape: [Int], summary: String)?
    for (index, weight) in weights.enumerated() {
      let summary: String
      if let last, last.shape == weight.shape, last.description == weight.description {
        summary = last.summary
      } else {
        summary = weight.summary
        last = (weight.description, weight.shape, summary)
      }
      bytes.append(contentsOf: (index == 0 ? #"{"name":"# : #",{"name":"#).utf8)
      append(string: weight.name)
      bytes.append(contentsOf: #","subclass":"#.utf8)
      append(string: weight.description.subclass ?? "Tensor")
      bytes.append(contentsOf: #","summary":"#.utf8)
      append(string: summary)
      bytes.append(contentsOf: #","dtype":"#.utf8)
      append(string: weight.scheme.source.torchName)
      bytes.append(contentsOf: #","shape":"#.utf8)
      append(shape: weight.shape)
      bytes.append(contentsOf: #","parts":{"#.utf8)
      for (position, part) in weight.parts.sorted(by: { $0.key < $1.key }).enumerated() {
        if position > 0 { bytes.append(UInt8(ascii: ",")) }
        append(key: part.key.rawValue)
        append(string: part.value.tensor.name)
      }
      bytes.append(contentsOf: "}}".utf8)
    }
    bytes.append(contentsOf: #"],"totals":{"tensors":"#.utf8)
    append(number: tensorCount)
    bytes.append(contentsOf: #","parameters":"#.utf8)
    append(number: totalParameters)
    bytes.append(contentsOf: #","bytes":"#.utf8)
    append(number: totalBytes)
    bytes.append(contentsOf: "}}\n".utf8)
    return bytes
  }
}
