using OnnxQuant.Cli;

namespace OnnxQuant.Tests.Cli;

public class FormatTests
{
    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(1023L, "1023 B")]
    [InlineData(1536L, "1.5 KiB")]
    [InlineData(90893304L, "86.7 MiB")]
    [InlineData(3L << 30, "3.0 GiB")]
    public void BytesUseBinaryUnits(long bytes, string expected) => Assert.Equal(expected, Format.Bytes(bytes));

    [Theory]
    [InlineData(512L, "512")]
    [InlineData(9999L, "9999")]
    [InlineData(22713216L, "22.7M")]
    [InlineData(6_738_415_616L, "6.7B")]
    public void CountsAreShortened(long count, string expected) => Assert.Equal(expected, Format.Count(count));

    [Fact]
    public void LongNameListsAreCut()
    {
        Assert.Equal("a, b", Format.Names(["a", "b"], 3));
        Assert.Equal("a, b, c ... and 2 more", Format.Names(["a", "b", "c", "d", "e"], 3));
    }
}
