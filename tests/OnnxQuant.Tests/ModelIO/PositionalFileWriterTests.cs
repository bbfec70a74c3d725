using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>The save's writer: buffered writes, alignment, and ranges of other files copied in by the kernel.</summary>
public class PositionalFileWriterTests
{
    [Fact]
    public void Writes_padding_and_kernel_copied_ranges_land_in_order_byte_for_byte()
    {
        using var dir = new TempFolder();
        var random = new Random(5);
        var source = new byte[3 << 20];
        random.NextBytes(source);
        File.WriteAllBytes(dir.File("source.bin"), source);
        var head = new byte[1000];
        random.NextBytes(head);

        using (var writer = new PositionalFileWriter(dir.File("out.bin")))
        using (var input = File.OpenHandle(dir.File("source.bin")))
        {
            writer.Write(head); // buffered
            Assert.Equal(4096, writer.Align(4096));
            // An unaligned source range, larger than the writer's buffer.
            long copied = writer.CopyFrom(input, 12345, 2_000_000);
            // This suite runs on Linux (ext4/tmpfs), where the kernel copy must take the whole range.
            Assert.Equal(OperatingSystem.IsLinux() ? 2_000_000 : 0, copied);
            if (copied < 2_000_000)
                writer.Write(source.AsSpan(12345 + (int)copied, 2_000_000 - (int)copied));
            writer.Write(new byte[] { 7, 8, 9 });
            Assert.Equal(4096 + 2_000_000 + 3, writer.Position);
            writer.FlushToDisk();
        }

        var expected = new byte[4096 + 2_000_000 + 3];
        head.CopyTo(expected, 0);
        source.AsSpan(12345, 2_000_000).CopyTo(expected.AsSpan(4096));
        new byte[] { 7, 8, 9 }.CopyTo(expected, 4096 + 2_000_000);
        Assert.Equal(expected, File.ReadAllBytes(dir.File("out.bin")));
    }

    [Fact]
    public void The_writer_refuses_to_replace_an_existing_file()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("taken.bin"), [1]);
        Assert.Throws<IOException>(() => new PositionalFileWriter(dir.File("taken.bin")));
        Assert.Equal([1], File.ReadAllBytes(dir.File("taken.bin")));
    }
}
