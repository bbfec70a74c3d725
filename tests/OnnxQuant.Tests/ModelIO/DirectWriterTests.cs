using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>
/// The spill's writer thread: tensors queued at 4 KiB boundaries land byte for byte with nothing past their end, read
/// back the same before and after they are written, and a failed write reaches the caller. The writer is given ordinary
/// handles here, so its logic is tested on any file system; whether a spill gets O_DIRECT depends on the one it is on.
/// </summary>
public class DirectWriterTests
{
    [Fact]
    public void Queued_tensors_land_at_their_offsets_and_read_back_the_same_before_and_after()
    {
        using var dir = new TempFolder();
        string path = dir.File("spill");
        using var buffered = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        var written = new List<(long Offset, byte[] Bytes)>();
        using (var writer = new DirectWriter(File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite), buffered))
        {
            long end = 0;
            for (int i = 0; i < 24; i++)
            {
                // Lengths with and without a partial last block, one past the 8 MiB bounce buffer.
                var bytes = Bytes(i == 5 ? (9 << 20) + 100 : 4096 * (i + 1) + (i % 3) * 777, seed: i);
                long offset = (end + 4095) / 4096 * 4096;
                writer.Enqueue(offset, bytes);
                var back = new byte[1000];
                if (!writer.TryReadQueued(offset + 17, back))
                    RandomAccess.Read(buffered, back, offset + 17);
                Assert.Equal(bytes.AsSpan(17, 1000).ToArray(), back);
                written.Add((offset, bytes));
                end = offset + bytes.Length;
            }
            writer.WaitForWrites();
            Assert.False(writer.TryReadQueued(written[0].Offset, new byte[10]));
        }
        var file = File.ReadAllBytes(path);
        Assert.Equal(written[^1].Offset + written[^1].Bytes.Length, file.Length);
        foreach (var (offset, bytes) in written)
            Assert.Equal(bytes, file.AsSpan((int)offset, bytes.Length).ToArray());
    }

    [Theory]
    [InlineData((20 << 20) + 123)] // three chunks of the double buffer and a partial last block
    [InlineData(4096)]
    [InlineData(100)]              // no whole block: all through the page cache
    public void A_queued_copy_of_another_file_lands_byte_for_byte(int length)
    {
        using var dir = new TempFolder();
        var source = Bytes(length + 5000, seed: length);
        File.WriteAllBytes(dir.File("source"), source);
        string path = dir.File("spill");
        using var buffered = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        using var input = File.OpenHandle(dir.File("source"), FileMode.Open, FileAccess.Read);
        var first = Bytes(5000, seed: 1);
        using (var writer = new DirectWriter(File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite), buffered))
        {
            writer.Enqueue(0, first);
            writer.EnqueueCopy(8192, input, 1234, length);
            writer.WaitForWrites();
        }
        var file = File.ReadAllBytes(path);
        Assert.Equal(8192 + length, file.Length);
        Assert.Equal(first, file[..5000]);
        Assert.Equal(source.AsSpan(1234, length).ToArray(), file[8192..]);
    }

    [Fact]
    public void Background_copies_land_byte_for_byte_around_tensors_queued_after_them()
    {
        using var dir = new TempFolder();
        int length = (20 << 20) + 123; // chunks of the bounce buffer and a partial last block
        var source = Bytes(length + 5000, seed: 3);
        File.WriteAllBytes(dir.File("source"), source);
        string path = dir.File("spill");
        using var buffered = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        using var input = File.OpenHandle(dir.File("source"), FileMode.Open, FileAccess.Read);
        long second = (length + 4095) / 4096 * 4096, tensors = second + 16384;
        var queued = Enumerable.Range(0, 6).Select(i => Bytes((3 << 20) + 1000 * i, seed: 10 + i)).ToList();
        var offsets = new List<long>();
        using (var writer = new DirectWriter(File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite), buffered))
        {
            writer.EnqueueBackgroundCopy(0, input, 1234, length);
            long at = tensors;
            foreach (var bytes in queued)
            {
                writer.Enqueue(at, bytes);
                offsets.Add(at);
                at = (at + bytes.Length + 4095) / 4096 * 4096;
                if (offsets.Count == 3)
                    writer.EnqueueBackgroundCopy(second, input, 7, 10000);
            }
            writer.WaitForWrites();
        }
        var file = File.ReadAllBytes(path);
        Assert.Equal(offsets[^1] + queued[^1].Length, file.Length);
        Assert.Equal(source.AsSpan(1234, length).ToArray(), file[..length]);
        Assert.Equal(source.AsSpan(7, 10000).ToArray(), file.AsSpan((int)second, 10000).ToArray());
        for (int i = 0; i < queued.Count; i++)
            Assert.Equal(queued[i], file.AsSpan((int)offsets[i], queued[i].Length).ToArray());
    }

    [Fact]
    public void A_failed_write_is_thrown_by_the_next_call()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("read-only"), [1]);
        using var buffered = File.OpenHandle(dir.File("read-only"), FileMode.Open, FileAccess.Read);
        // A handle that cannot write: the first write fails, as one would on a full disk.
        using var writer = new DirectWriter(File.OpenHandle(dir.File("read-only"), FileMode.Open, FileAccess.Read), buffered);
        writer.Enqueue(0, Bytes(1 << 20, seed: 1));

        Assert.ThrowsAny<Exception>(writer.WaitForWrites);
        Assert.ThrowsAny<Exception>(() => writer.Enqueue(1 << 20, Bytes(4096, seed: 2)));
        Assert.ThrowsAny<Exception>(() => writer.TryReadQueued(0, new byte[10]));
    }

    [Fact]
    public void A_spill_for_an_output_reads_every_tensor_back_while_its_writes_are_queued()
    {
        using var dir = new TempFolder();
        using var spill = new SpillFile(dir.Path, mayBecomeOutput: true);
        var tensors = new List<(Tensor Tensor, float[] Values)>();
        for (int i = 0; i < 30; i++)
        {
            var values = Enumerable.Range(0, (1 << 18) + 7 * i).Select(j => (float)Math.Sin(j + i)).ToArray();
            var t = spill.Write(Tensor.FromFloats($"t{i}", values, [values.Length]));
            Assert.Equal(values, t.ToFloats());
            tensors.Add((t, values));
        }
        spill.WaitForWrites();
        foreach (var (t, values) in tensors)
            Assert.Equal(values, t.ToFloats());
    }

    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
