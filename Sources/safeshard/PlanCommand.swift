import ArgumentParser
import Pipeline
import SafeTensors
import TorchAO

struct PlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan",
    abstract: "Show what a conversion would do, without writing anything.",
    discussion: """
      Lists which tensors get which scheme (and why the others are kept), the output shards and \
      their sizes, and how the memory budget is divided. `convert` with the same arguments \
      follows this plan exactly.

      Examples:
        safeshard plan Examples/tiny-llama --recipe int8-weight-only
        safeshard plan model/ --recipe nvfp4 --max-shard-size 2GB --json
      """
  )

  @Argument(
    help:
      "The model directory, .safetensors file or PyTorch pickle (.bin, .pt, .pth) to convert, or a Hugging Face repository id (org/name) in the local cache."
  )
  var input: String

  @Option(help: "With a repository id: the branch, tag or commit in the cache. (default: main)")
  var revision: String?

  @OptionGroup var flags: ConversionFlags

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func run() throws {
    let location = try ModelLocation.resolve(input, revision: revision)
    let (recipe, options) = try flags.resolve()
    let checkpoint = try Checkpoint.input(at: location, dequantizing: recipe.dequantizesInput)
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    let share = try MemoryShare(plan: plan, files: checkpoint.files)
    print(
      json
        ? Self.json(plan, recipe: recipe.name, share: share, input: checkpoint)
        : Self.text(plan, recipe: recipe.name, share: share, input: checkpoint),
      terminator: "")
  }

  static func action(_ entry: ConversionPlan.Entry) -> String {
    // The flattened entry holds the config's description for this shape and format already.
    guard entry.config != nil, entry.format != nil else { return "keep (\(entry.reason ?? ""))" }
    return entry.flattened.description.subclass ?? "quantize"
  }

  /// What the input is: ``Checkpoint/format``, and `torchao (as stored)` for a torchao checkpoint
  /// that the recipe copies as it is (`reshard`; the others read it dequantized, format `torchao`).
  static func inputFormat(_ input: Checkpoint) -> String {
    input.format == "safetensors" && TorchAOCheckpoint.hasTorchAOMetadata(input) ? "torchao (as stored)" : input.format
  }

  /// How the input tensor of `entry` is read, when that is more than a copy of its bytes.
  static func readingNote(_ entry: ConversionPlan.Entry, input: Checkpoint) -> String? {
    input.files[entry.inputs[0].file].readingNote(of: entry.inputs[0].tensor.name)
  }

  static func text(_ plan: ConversionPlan, recipe: String, share: MemoryShare, input: Checkpoint) -> String {
    var text = "input: \(inputFormat(input)), \(input.files.count) file\(input.files.count == 1 ? "" : "s")\n"
    text +=
      "recipe \(recipe): \(plan.entries.filter { $0.config != nil }.count) of \(plan.entries.count) tensors quantized\n\n"
    let names = plan.entries.map(\.source.name.escapingControlCharacters)
    // An ASCII name without control characters (they are escaped) has one character a byte.
    let widths = names.map { name in name.utf8.allSatisfy { $0 < 0x80 } ? name.utf8.count : name.count }
    let width = widths.max() ?? 0
    text.reserveCapacity(text.utf8.count + names.count * (width + 64))
    for (index, entry) in plan.entries.enumerated() {
      var shards: [Int] = []
      for placement in plan.placements(ofEntry: index) where !shards.contains(placement.shard) {
        shards.append(placement.shard)
      }
      text += "  "
      text += names[index]
      text += String(repeating: " ", count: width - widths[index])
      text += "  "
      text += entry.source.dtype.rawValue
      // The shape as `[Int].description` writes it, without the generic formatting.
      text += " ["
      for (axis, length) in entry.source.shape.enumerated() {
        if axis > 0 { text += ", " }
        text += String(length)
      }
      text += "]  →  "
      text += action(entry)
      text += "  ["
      for (position, shard) in shards.sorted().enumerated() {
        if position > 0 { text += ", " }
        text += plan.shards[shard].fileName
      }
      text += "]"
      if let note = readingNote(entry, input: input) { text += "  (input " + note + ")" }
      text += "\n"
      if entry.inputs.count > 1 {
        let inputs = entry.inputs.map(\.tensor.name.escapingControlCharacters)
        let shown = inputs.count <= 4 ? inputs : inputs.prefix(2) + ["…"] + inputs.suffix(2)
        text += "    \(entry.parameter.escapingControlCharacters): fuses \(inputs.count) input tensors: "
        text += shown.joined(separator: ", ") + "\n"
      }
    }
    text +=
      "\n\(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s"), \(plan.totalSize) bytes of tensors, \(plan.totalParameters) parameters:\n"
    for shard in plan.shards {
      text += "  \(shard.fileName)  \(shard.header.tensors.count) tensors  \(shard.fileSize) bytes\n"
    }
    text += "\nmemory: budget \(plan.options.memory) bytes; chunks of \(share.chunkBytes) input bytes; "
    text += "\(share.workers) worker\(share.workers == 1 ? "" : "s") of at most \(share.largestJob) bytes; "
    text += "\(share.writeBuffers / share.writeBlockSize) write blocks of \(share.writeBlockSize) bytes; "
    text += "staging up to \(share.stagingLimit) bytes before spilling (\(plan.options.spillCompression.rawValue))\n"
    if plan.entries.contains(where: { $0.config != nil }) {
      text += "\nvalues: the plan reads headers only; convert warns, naming the tensor and row, about NaN or "
      text += "infinity in a quantized weight and rows that quantize to NaN (an all-zero row under float8)\n"
    }
    return text
  }

  /// The plan as one compact JSON object: what ``JSONWriter`` writes for it, written straight
  /// to bytes (a value tree of 100 000 entries costs more than the plan itself).
  static func json(_ plan: ConversionPlan, recipe: String, share: MemoryShare, input: Checkpoint) -> String {
    var bytes: [UInt8] = []
    func append(_ literal: String) { bytes.append(contentsOf: literal.utf8) }
    func append(string: String) { JSONWriter.appendString(string, style: .compact, to: &bytes) }
    func append(shape: [Int]) {
      append("[")
      for (axis, length) in shape.enumerated() {
        if axis > 0 { append(",") }
        append(String(length))
      }
      append("]")
    }
    append(#"{"recipe":"#)
    append(string: recipe)
    append(#","input_format":"#)
    append(string: inputFormat(input))
    append(#","entries":["#)
    for (index, entry) in plan.entries.enumerated() {
      if index > 0 { append(",") }
      append(#"{"name":"#)
      append(string: entry.source.name)
      append(#","dtype":"#)
      append(string: entry.source.dtype.rawValue)
      append(#","shape":"#)
      append(shape: entry.source.shape)
      append(entry.config == nil ? #","action":"keep","subclass":null"# : #","action":"quantize","subclass":"#)
      if entry.config != nil { append(string: action(entry)) }
      append(#","reason":"#)
      if let reason = entry.reason { append(string: reason) } else { append("null") }
      append(#","input_note":"#)
      if let note = readingNote(entry, input: input) { append(string: note) } else { append("null") }
      append(#","parameter":"#)
      append(string: entry.parameter)
      append(#","stored":["#)
      for (position, (stored, placement)) in zip(entry.flattened.stored, plan.placements(ofEntry: index)).enumerated() {
        if position > 0 { append(",") }
        append(#"{"name":"#)
        append(string: stored.spec.name)
        append(#","dtype":"#)
        append(string: stored.spec.dtype.rawValue)
        append(#","shape":"#)
        append(shape: stored.spec.shape)
        append(#","shard":"#)
        append(string: plan.shards[placement.shard].fileName)
        append(#","offset":"#)
        append(String(placement.tensor.dataOffsets.lowerBound))
        append("}")
      }
      append("]")
      if entry.inputs.count > 1 {
        append(#","inputs":"#)
        JSONWriter.append(.array(entry.inputs.map { .string($0.tensor.name) }), to: &bytes)
      }
      append("}")
    }
    append("]")
    func number(_ value: Int) -> JSONValue { .number(String(value)) }
    let shards: [JSONValue] = plan.shards.map {
      .object([
        JSONMember("file", .string($0.fileName)), JSONMember("tensors", number($0.header.tensors.count)),
        JSONMember("bytes", number($0.fileSize)),
      ])
    }
    let rest: [JSONMember] = [
      JSONMember("shards", .array(shards)),
      JSONMember("total_size", number(plan.totalSize)), JSONMember("total_parameters", number(plan.totalParameters)),
      JSONMember(
        "memory",
        .object([
          JSONMember("budget", number(plan.options.memory)), JSONMember("chunk_bytes", number(share.chunkBytes)),
          JSONMember("workers", number(share.workers)), JSONMember("largest_job", number(share.largestJob)),
          JSONMember("staging_limit", number(share.stagingLimit)),
          JSONMember("write_buffers", number(share.writeBuffers)),
        ])),
    ]
    for member in rest {
      append(",")
      append(string: member.key)
      append(":")
      JSONWriter.append(member.value, to: &bytes)
    }
    append("}\n")
    return String(decoding: bytes, as: UTF8.self)
  }
}
