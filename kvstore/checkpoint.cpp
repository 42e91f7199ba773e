#include "kvstore/checkpoint.hpp"

#include <fmt/format.h>

#include "common/crc32c.hpp"

namespace squall::kvstore {

namespace {

void put_crc(Bytes& out, std::size_t from) {
  std::uint32_t crc = crc32c(std::span<const std::byte>(out).subspan(from));
  ByteWriter(out).put(crc);
}

Status encode_header(const CheckpointHeader& header, Bytes& out) {
  ByteWriter writer(out);
  writer.put_bytes(as_bytes(kCheckpointMagic));
  writer.put(kCheckpointFormat);
  writer.put(header.pools);
  writer.put(header.version);
  writer.put(header.timestamp);
  put_crc(out, 0);
  return Status::ok();
}

Result<CheckpointHeader> decode_header(ByteReader& reader, std::span<const std::byte> bytes) {
  std::span<const std::byte> magic;
  std::uint32_t format = 0;
  std::uint32_t crc = 0;
  CheckpointHeader header;
  if (!reader.get_bytes(kCheckpointMagic.size(), magic) || !reader.get(format) ||
      !reader.get(header.pools) || !reader.get(header.version) || !reader.get(header.timestamp) ||
      !reader.get(crc)) {
    return corruption("checkpoint shorter than its header");
  }
  if (as_string_view(magic) != kCheckpointMagic) return corruption("not a checkpoint (magic)");
  if (crc != crc32c(bytes.first(kCheckpointHeaderBytes - 4))) {
    return corruption("checkpoint header CRC mismatch");
  }
  if (format != kCheckpointFormat) return corruption(fmt::format("checkpoint format {}", format));
  return header;
}

Status decode_entry(ByteReader& body, std::uint32_t pool, const CheckpointHeader& header,
                    const CheckpointLimits& limits, CheckpointEntry& entry) {
  std::uint8_t op = 0;
  std::uint32_t key_bytes = 0;
  std::uint32_t value_bytes = 0;
  std::span<const std::byte> key;
  entry.pool = pool;
  if (!body.get(op) || !body.get(entry.version) || !body.get(entry.timestamp) ||
      !body.get(key_bytes) || key_bytes == 0 || key_bytes > limits.max_key_bytes ||
      !body.get_bytes(key_bytes, key) || !body.get(value_bytes) ||
      value_bytes > limits.max_value_bytes || !body.get_bytes(value_bytes, entry.value)) {
    return corruption("checkpoint entry truncated or out of limits");
  }
  if (op != kCheckpointEntryPut) return corruption(fmt::format("checkpoint entry op {}", op));
  if (entry.version == 0 || entry.version > header.version) {
    return corruption(fmt::format("checkpoint entry version {} outside (0, {}]", entry.version,
                                  header.version));
  }
  entry.key = as_string_view(key);
  return Status::ok();
}

struct ChunkHead {
  std::uint8_t kind = 0;
  std::uint32_t pool = 0;
  std::uint32_t entries = 0;
  std::uint32_t body_bytes = 0;
  std::uint32_t crc = 0;
};

Result<ChunkHead> decode_chunk_head(ByteReader& reader) {
  ChunkHead head;
  if (!reader.get(head.kind)) return corruption("checkpoint ends without a trailer");
  if (head.kind == kCheckpointChunkEnd) return head;
  if (head.kind != kCheckpointChunkEntries) {
    return corruption(fmt::format("checkpoint chunk kind {}", head.kind));
  }
  if (!reader.get(head.pool) || !reader.get(head.entries) || !reader.get(head.body_bytes) ||
      !reader.get(head.crc)) {
    return corruption("checkpoint chunk head truncated");
  }
  return head;
}

Status read_trailer(ByteReader& reader, std::span<const std::byte> bytes, std::uint32_t chunks,
                    std::uint64_t entries) {
  std::size_t start = reader.position() - 1;  // the kind byte was read already
  std::uint32_t stored_chunks = 0;
  std::uint64_t stored_entries = 0;
  std::uint32_t crc = 0;
  if (!reader.get(stored_chunks) || !reader.get(stored_entries) || !reader.get(crc)) {
    return corruption("checkpoint trailer truncated");
  }
  if (crc != crc32c(bytes.subspan(start, kCheckpointTrailerBytes - 4))) {
    return corruption("checkpoint trailer CRC mismatch");
  }
  if (stored_chunks != chunks || stored_entries != entries) {
    return corruption("checkpoint trailer counts do not match its chunks");
  }
  if (reader.remaining() != 0) return corruption("bytes after the checkpoint trailer");
  return Status::ok();
}

}  // namespace

CheckpointWriter::CheckpointWriter(const CheckpointHeader& header, const CheckpointLimits& limits)
    : header_(header), limits_(limits) {
  Status encoded = encode_header(header_, out_);
  SQUALL_ASSERT(encoded.is_ok(), "checkpoint header");
}

Status CheckpointWriter::add(const CheckpointEntry& entry) {
  if (entry.pool >= header_.pools) return invalid_argument("checkpoint entry of an unknown pool");
  if (entry.key.empty() || entry.key.size() > limits_.max_key_bytes ||
      entry.value.size() > limits_.max_value_bytes) {
    return invalid_argument("checkpoint entry key or value out of limits");
  }
  std::size_t entry_bytes = kCheckpointEntryFixedBytes + entry.key.size() + entry.value.size();
  if (out_.size() + body_.size() + entry_bytes + kCheckpointChunkHeadBytes +
          kCheckpointTrailerBytes > limits_.max_checkpoint_bytes) {
    return Status(Code::no_space, fmt::format("checkpoint larger than {} bytes",
                                              limits_.max_checkpoint_bytes));
  }
  if (body_entries_ > 0 &&
      (entry.pool != body_pool_ || body_.size() + entry_bytes > limits_.chunk_bytes)) {
    flush_chunk();
  }
  body_pool_ = entry.pool;
  ByteWriter writer(body_);
  writer.put(kCheckpointEntryPut);
  writer.put(entry.version);
  writer.put(entry.timestamp);
  writer.put_string(entry.key);
  writer.put(static_cast<std::uint32_t>(entry.value.size()));
  writer.put_bytes(entry.value);
  ++body_entries_;
  ++entries_;
  return Status::ok();
}

void CheckpointWriter::flush_chunk() {
  if (body_entries_ == 0) return;
  std::size_t start = out_.size();
  ByteWriter writer(out_);
  writer.put(kCheckpointChunkEntries);
  writer.put(body_pool_);
  writer.put(body_entries_);
  writer.put(static_cast<std::uint32_t>(body_.size()));
  std::uint32_t crc = crc32c(std::span<const std::byte>(out_).subspan(start));
  crc = crc32c_extend(crc, body_);
  writer.put(crc);
  writer.put_bytes(body_);
  body_.clear();
  body_entries_ = 0;
  ++chunks_;
}

Bytes CheckpointWriter::finish() {
  flush_chunk();
  std::size_t start = out_.size();
  ByteWriter writer(out_);
  writer.put(kCheckpointChunkEnd);
  writer.put(chunks_);
  writer.put(entries_);
  put_crc(out_, start);
  return std::move(out_);
}

Result<CheckpointHeader> read_checkpoint(std::span<const std::byte> bytes,
                                         const CheckpointLimits& limits,
                                         const CheckpointVisitor& visit) {
  if (bytes.size() > limits.max_checkpoint_bytes) {
    return corruption(fmt::format("checkpoint of {} bytes exceeds the limit", bytes.size()));
  }
  ByteReader reader(bytes);
  auto header = decode_header(reader, bytes);
  if (!header) return header.status();
  std::uint32_t chunks = 0;
  std::uint64_t entries = 0;
  for (;;) {
    std::size_t start = reader.position();
    auto head = decode_chunk_head(reader);
    if (!head) return head.status();
    if (head->kind == kCheckpointChunkEnd) {
      SQUALL_TRY(read_trailer(reader, bytes, chunks, entries));
      return header;
    }
    std::span<const std::byte> body;
    if (head->pool >= header->pools || head->entries == 0 ||
        head->body_bytes > limits.max_chunk_body_bytes() ||
        !reader.get_bytes(head->body_bytes, body)) {
      return corruption(fmt::format("checkpoint chunk at offset {} is malformed", start));
    }
    std::uint32_t crc = crc32c(bytes.subspan(start, kCheckpointChunkHeadBytes - 4));
    if (crc32c_extend(crc, body) != head->crc) {
      return corruption(fmt::format("checkpoint chunk at offset {}: CRC mismatch", start));
    }
    ByteReader body_reader(body);
    for (std::uint32_t i = 0; i < head->entries; ++i) {
      CheckpointEntry entry;
      SQUALL_TRY(decode_entry(body_reader, head->pool, *header, limits, entry));
      if (visit) SQUALL_TRY(visit(entry));
    }
    if (body_reader.remaining() != 0) return corruption("checkpoint chunk has trailing bytes");
    ++chunks;
    entries += head->entries;
  }
}

}  // namespace squall::kvstore
