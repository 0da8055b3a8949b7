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
      "The model directory or .safetensors file to convert, or a Hugging Face repository id (org/name) in the local cache."
  )
  var input: String

  @Option(help: "With a repository id: the branch, tag or commit in the cache. (default: main)")
  var revision: String?

  @OptionGroup var flags: ConversionFlags

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func run() throws {
    let checkpoint = try Checkpoint(path: ModelLocation.resolve(input, revision: revision))
    let (recipe, options) = try flags.resolve()
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    let share = try MemoryShare(plan: plan)
    print(
      json ? Self.json(plan, recipe: recipe.name, share: share) : Self.text(plan, recipe: recipe.name, share: share),
      terminator: "")
  }

  static func action(_ entry: ConversionPlan.Entry) -> String {
    // The flattened entry holds the config's description for this shape and format already.
    guard entry.config != nil, entry.format != nil else { return "keep (\(entry.reason ?? ""))" }
    return entry.flattened.description.subclass ?? "quantize"
  }

  static func text(_ plan: ConversionPlan, recipe: String, share: MemoryShare) -> String {
    var text =
      "recipe \(recipe): \(plan.entries.filter { $0.config != nil }.count) of \(plan.entries.count) tensors quantized\n\n"
    let names = plan.entries.map(\.source.name.escapingControlCharacters)
    let width = names.map(\.count).max() ?? 0
    for (entry, name) in zip(plan.entries, names) {
      var indices: [Int] = []
      for stored in entry.flattened.stored {
        if let shard = plan.placement(of: stored.spec.name)?.shard, !indices.contains(shard) { indices.append(shard) }
      }
      let shards = indices.sorted().map { plan.shards[$0].fileName }.joined(separator: ", ")
      // The shape as `[Int].description` writes it, without the generic formatting.
      let shape = "[" + entry.source.shape.map(String.init).joined(separator: ", ") + "]"
      text +=
        "  " + name + String(repeating: " ", count: width - name.count)
        + "  \(entry.source.dtype.rawValue) \(shape)  →  \(action(entry))  [\(shards)]\n"
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

  static func json(_ plan: ConversionPlan, recipe: String, share: MemoryShare) -> String {
    func number(_ value: Int) -> JSONValue { .number(String(value)) }
    let entries: [JSONValue] = plan.entries.map { entry in
      .object(
        [
          JSONMember("name", .string(entry.source.name)), JSONMember("dtype", .string(entry.source.dtype.rawValue)),
          JSONMember("shape", .array(entry.source.shape.map(number))),
          JSONMember("action", .string(entry.config == nil ? "keep" : "quantize")),
          JSONMember("subclass", entry.config == nil ? .null : .string(action(entry))),
          JSONMember("reason", entry.reason.map { .string($0) } ?? .null),
          JSONMember("parameter", .string(entry.parameter)),
          JSONMember(
            "stored",
            .array(
              entry.flattened.stored.map { stored in
                let placement = plan.placement(of: stored.spec.name)
                return .object([
                  JSONMember("name", .string(stored.spec.name)),
                  JSONMember("dtype", .string(stored.spec.dtype.rawValue)),
                  JSONMember("shape", .array(stored.spec.shape.map(number))),
                  JSONMember("shard", .string(placement.map { plan.shards[$0.shard].fileName } ?? "")),
                  JSONMember("offset", number(placement?.tensor.dataOffsets.lowerBound ?? 0)),
                ])
              })),
        ] + (entry.inputs.count > 1 ? [JSONMember("inputs", .array(entry.inputs.map { .string($0.tensor.name) }))] : [])
      )
    }
    let shards: [JSONValue] = plan.shards.map {
      .object([
        JSONMember("file", .string($0.fileName)), JSONMember("tensors", number($0.header.tensors.count)),
        JSONMember("bytes", number($0.fileSize)),
      ])
    }
    let root = JSONValue.object([
      JSONMember("recipe", .string(recipe)), JSONMember("entries", .array(entries)),
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
    ])
    return JSONWriter.string(root) + "\n"
  }
}
