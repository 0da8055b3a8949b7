import Foundation
import Testing

@testable import Pickle

/// A zip checkpoint with `pickle` as data.pkl and one 6-float storage `0`.
func checkpoint(_ pickle: [UInt8]) -> String {
  TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(6))]).write()
}

/// The refusal of a checkpoint whose data.pkl is `pickle`, or `nil` if it loads.
func refusal(_ pickle: [UInt8]) -> PickleError? {
  do {
    _ = try PickleCheckpointFile(path: checkpoint(pickle))
    return nil
  } catch { return error }
}

@Suite("The symbolic pickle machine")
struct PickleMachineTests {
  @Test("an opcode off the list is refused, naming it and its byte offset in the file")
  func opcode() throws {
    var writer = PickleWriter()
    writer.orderedDict()
    writer.op(0x8F)  // EMPTY_SET
    writer.stop()
    let path = checkpoint(writer.bytes)
    do {
      _ = try PickleCheckpointFile(path: path)
      Issue.record("loaded")
    } catch {
      #expect(error.code == .opcode)
      #expect(error.message.contains("0x8F") && error.message.contains("EMPTY_SET"))
      // data.pkl is the first record: its data starts at 64, and the opcode is its 20th byte.
      let pickleStart = 64
      #expect(error.offset == pickleStart + writer.bytes.count - 2)
    }
  }

  @Test("a global off the list is refused, even if never called")
  func global() throws {
    var writer = PickleWriter()
    writer.orderedDict()
    writer.string("w")
    writer.global("os", "system")
    writer.setItem()
    writer.stop()
    let error = try #require(refusal(writer.bytes))
    #expect(error.code == .global && error.message.contains("os.system"))
  }

  @Test("SETITEM on a list, APPEND on a dict and SETITEM on a tensor are refused")
  func containerTypes() throws {
    var list = PickleWriter()
    list.emptyList()
    list.string("k")
    list.none()
    list.setItem()
    list.stop()
    #expect(try #require(refusal(list.bytes)).message.contains("SETITEM on a list"))
    var dict = PickleWriter()
    dict.emptyDict()
    dict.none()
    dict.append()
    dict.stop()
    #expect(try #require(refusal(dict.bytes)).message.contains("APPEND on a dict"))
    var tensor = PickleWriter()
    tensor.tensor(key: "0", count: 6, shape: [6], strides: [1])
    tensor.string("k")
    tensor.none()
    tensor.setItem()
    tensor.stop()
    #expect(try #require(refusal(tensor.bytes)).code == .malformedPickle)
  }

  @Test("an undefined memo reference is refused")
  func undefinedMemo() throws {
    var writer = PickleWriter()
    writer.orderedDict()
    writer.put(0)
    writer.get(7)
    writer.stop()
    let error = try #require(refusal(writer.bytes))
    #expect(error.code == .malformedPickle && error.message.contains("memo entry 7"))
  }

  @Test("a length past the end is refused before anything is allocated")
  func lengthLie() throws {
    var writer = PickleWriter()
    writer.op(0x58, le(UInt32.max))
    let error = try #require(refusal(writer.bytes))
    #expect(error.code == .malformedPickle && error.message.contains("truncated"))
  }

  @Test("deep nesting is refused, not a crash", arguments: [0x85 as UInt8, 0x28])
  func deepNesting(opcode: UInt8) throws {
    var writer = PickleWriter()
    writer.none()
    for _ in 0..<200_000 { writer.op(opcode) }  // TUPLE1 wraps again and again; MARK opens and opens
    writer.stop()
    #expect(try #require(refusal(writer.bytes)).code == .tooDeep)
  }

  @Test("nested lists built by APPEND are refused past the depth limit")
  func deepLists() throws {
    var writer = PickleWriter()
    for _ in 0..<1_000 { writer.emptyList() }
    for _ in 0..<999 { writer.append() }
    writer.stop()
    #expect(try #require(refusal(writer.bytes)).code == .tooDeep)
  }

  @Test("a memo bomb used as a value is read in linear time and refused as not a tensor")
  func memoBombValue() throws {
    var writer = PickleWriter()
    writer.orderedDict()
    writer.string("a")
    writer.mark()
    writer.none()
    writer.put(0)
    for level in 1...60 {
      writer.get(UInt8(level - 1))
      writer.op(0x86)
      writer.put(UInt8(level))
    }
    writer.tuple()  // (t_60,)
    writer.setItem()
    writer.stop()
    let start = ContinuousClock.now
    let error = try #require(refusal(writer.bytes))
    #expect(error.code == .unexpectedObject && error.tensor == "a")
    #expect(ContinuousClock.now - start < .seconds(1))
  }

  @Test("a memo bomb used as a dict key is refused before any hashing")
  func memoBombKey() throws {
    var writer = PickleWriter()
    writer.orderedDict()
    writer.none()
    writer.put(0)
    for level in 1...60 {
      writer.get(UInt8(level - 1))
      writer.op(0x86)
      writer.put(UInt8(level))
    }
    writer.none()
    writer.setItem()
    writer.stop()
    let start = ContinuousClock.now
    let error = try #require(refusal(writer.bytes))
    #expect(error.code == .unexpectedObject && error.message.contains("key"))
    #expect(ContinuousClock.now - start < .seconds(1))
  }

  @Test("a list put inside itself is refused")
  func selfReference() throws {
    var writer = PickleWriter()
    writer.emptyList()
    writer.put(0)
    writer.get(0)
    writer.append()
    writer.stop()
    #expect(try #require(refusal(writer.bytes)).message.contains("inside itself"))
  }

  @Test("a container cannot change once inside another value")
  func frozen() throws {
    var writer = PickleWriter()
    writer.emptyDict()
    writer.put(0)
    writer.op(0x85)  // (d,)
    writer.get(0)
    writer.string("k")
    writer.none()
    writer.setItem()
    writer.stop()
    #expect(try #require(refusal(writer.bytes)).message.contains("already inside"))
  }

  @Test("STOP with an open MARK or extra values is refused")
  func stop() throws {
    var open = PickleWriter()
    open.orderedDict()
    open.mark()
    open.stop()
    #expect(try #require(refusal(open.bytes)).message.contains("MARK"))
    var extra = PickleWriter()
    extra.orderedDict()
    extra.none()
    extra.stop()
    #expect(try #require(refusal(extra.bytes)).message.contains("2 values"))
  }

  @Test("an integer wider than 64 bits is never a size")
  func wideInteger() throws {
    let pickle = PickleWriter.stateDict([
      (
        "w",
        { writer in
          writer.global("torch._utils", "_rebuild_tensor_v2")
          writer.mark()
          writer.storage("FloatStorage", key: "0", count: 6)
          writer.int(0)
          writer.mark()
          writer.op(0x8A, [9] + [UInt8](repeating: 0, count: 8) + [1])  // 2^64
          writer.tuple()
          writer.intTuple([1])
          writer.bool(false)
          writer.orderedDict()
          writer.tuple()
          writer.reduce()
        }
      )
    ])
    let error = try #require(refusal(pickle))
    #expect(error.code == .invalidView && error.message.contains("64 bits"))
  }

  @Test("a protocol 4 pickle (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL) is read")
  func protocol4() throws {
    var writer = PickleWriter(protocol: 4)
    writer.op(0x95, le(UInt64(0)))
    writer.op(0x8C, [11] + Array("collections".utf8))
    writer.op(0x8C, [11] + Array("OrderedDict".utf8))
    writer.op(0x93)
    writer.op(0x94)
    writer.emptyTuple()
    writer.reduce()
    writer.op(0x8C, [1] + Array("w".utf8))
    writer.tensor(key: "0", count: 6, shape: [6], strides: [1])
    writer.setItem()
    writer.stop()
    let file = try PickleCheckpointFile(path: checkpoint(writer.bytes))
    #expect(file.entries.map(\.name) == ["w"])
  }

  @Test("a pickle that pushes or memoizes more values than the limit is refused")
  func valueLimit() throws {
    var pushes = PickleWriter()
    pushes.bytes += [UInt8](repeating: 0x4E, count: 1_001)  // NONE
    pushes.stop()
    #expect(throws: PickleError.self) { try PickleMachine.run(pushes.bytes, valueLimit: 1_000) }
    var puts = PickleWriter()
    puts.none()
    for index in 0..<1_001 { puts.longPut(UInt32(index)) }
    puts.stop()
    do {
      _ = try PickleMachine.run(puts.bytes, valueLimit: 1_000)
      Issue.record("accepted")
    } catch {
      #expect(error.code == .tooDeep && error.message.contains("memoizes"))
    }
    #expect(try PickleMachine.run(puts.bytes, valueLimit: 1_001).end == puts.bytes.count)
  }
}
