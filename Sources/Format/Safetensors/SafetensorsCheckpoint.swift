import Foundation

/// A checkpoint as published: one safetensors file, or the shards a
/// `model.safetensors.index.json` lists (its `weight_map` names each tensor's shard).
public struct SafetensorsCheckpoint: Sendable {
    /// The name of the index file of a sharded checkpoint, as transformers writes it.
    public static let indexFileName = "model.safetensors.index.json"
    /// The name of the single file of an unsharded checkpoint, as transformers writes it.
    public static let singleFileName = "model.safetensors"

    /// The file or index the checkpoint was opened from, for messages.
    public let source: String
    /// The files holding the tensors (one unless sharded).
    public let files: [SafetensorsFile]
    /// Which of `files` holds each tensor.
    private let owners: [String: Int]

    /// Every tensor name, sorted.
    public var tensorNames: [String] { owners.keys.sorted() }

    /// The `__metadata__` of every file, the first file's value winning.
    public var metadata: [String: String] {
        files.reduce(into: [:]) { merged, file in merged.merge(file.metadata) { first, _ in first } }
    }

    /// Opens a `.safetensors` file, a `model.safetensors.index.json`, or a folder holding
    /// either (the index first).
    public static func open(_ path: String) throws(SafetensorsError) -> SafetensorsCheckpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .cannotOpen(file: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            let index = path + "/" + indexFileName
            if FileManager.default.fileExists(atPath: index) { return try openIndex(index) }
            let single = path + "/" + singleFileName
            guard FileManager.default.fileExists(atPath: single) else {
                throw .cannotOpen(file: path, reason: "the folder holds neither \(singleFileName) nor \(indexFileName)")
            }
            return try SafetensorsCheckpoint(single: SafetensorsFile.read(contentsOf: single))
        }
        if path.hasSuffix(".json") { return try openIndex(path) }
        return try SafetensorsCheckpoint(single: SafetensorsFile.read(contentsOf: path))
    }

    /// A checkpoint of one file.
    public init(single file: SafetensorsFile) {
        source = file.file
        files = [file]
        owners = Dictionary(file.tensors.map { ($0.name, 0) }, uniquingKeysWith: { first, _ in first })
    }

    private init(source: String, files: [SafetensorsFile], owners: [String: Int]) {
        self.source = source
        self.files = files
        self.owners = owners
    }

    private struct Index: Decodable {
        let weightMap: [String: String]
        enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
    }

    /// Reads the index and its shards, and checks that they agree: every listed tensor is in
    /// the shard named for it, and every shard's tensor is listed there.
    private static func openIndex(_ path: String) throws(SafetensorsError) -> SafetensorsCheckpoint {
        let index: Index
        do {
            index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch let error as DecodingError {
            throw .badIndex(file: path, detail: "malformed index: \(error.locatedDescription)")
        } catch {
            throw .cannotOpen(file: path, reason: "\(error.localizedDescription)")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let shardNames = Set(index.weightMap.values).sorted()
        var files: [SafetensorsFile] = []
        for shard in shardNames {
            // Shards lie beside the index: a path could read any file the user can.
            guard !shard.contains("/"), shard != ".", shard != "..", !shard.isEmpty else {
                throw .badIndex(file: path, detail: "shard '\(shard)' is not a file name beside the index")
            }
            files.append(try SafetensorsFile.read(contentsOf: folder.isEmpty ? shard : folder + "/" + shard))
        }
        var owners: [String: Int] = [:]
        for (position, file) in files.enumerated() {
            for tensor in file.tensors {
                let shard = shardNames[position]
                guard index.weightMap[tensor.name] == shard else {
                    let listed = index.weightMap[tensor.name].map { "lists it in '\($0)'" } ?? "does not list it"
                    throw .badIndex(file: path, detail: "shard '\(shard)' holds tensor '\(tensor.name)', but the index \(listed)")
                }
                owners[tensor.name] = position
            }
        }
        for (tensor, shard) in index.weightMap.sorted(by: { $0.key < $1.key }) where owners[tensor] == nil {
            throw .badIndex(file: path, detail: "tensor '\(tensor)' is listed in shard '\(shard)', which does not hold it")
        }
        return SafetensorsCheckpoint(source: path, files: files, owners: owners)
    }

    /// The record of tensor `name`, if the checkpoint holds it.
    public func info(_ name: String) -> SafetensorsTensorInfo? {
        owners[name].flatMap { files[$0].info(name) }
    }

    /// The file holding tensor `name`, for messages.
    public func file(holding name: String) -> String { owners[name].map { files[$0].file } ?? source }

    /// Tensor `name` as a constant named `graphName` (`SafetensorsFile.constant(named:as:)`).
    public func constant(named name: String, as graphName: String? = nil) throws(SafetensorsError) -> ConstantTensor {
        guard let owner = owners[name] else { throw .missingTensor(file: source, tensor: name) }
        return try files[owner].constant(named: name, as: graphName)
    }
}
