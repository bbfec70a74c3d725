using OnnxQuant.Calibrate.Evaluation;

namespace OnnxQuant.Tests.Eval;

public class NeighbourAgreementTests
{
    // Two tight pairs: (0, 1) near the x axis, (2, 3) near the y axis; lengths differ so only the angle can decide.
    private static readonly float[][] Pairs =
    [
        [1f, 0.1f, 0f], [5f, 0.6f, 0f], [0.1f, 2f, 0f], [0f, 0.3f, 0.01f],
    ];

    [Fact]
    public void NearestNeighbourIsByAngleAndNeverTheSentenceItself()
    {
        Assert.Equal(new[] { 1, 0, 3, 2 }, NeighbourAgreement.NearestNeighbours(Pairs));
    }

    [Fact]
    public void AgreementCountsSentencesWithTheSameNeighbour()
    {
        // Sentence 3 turns towards the x axis: its own neighbour changes (to 1), sentence 2 keeps 3, so 3 of 4 agree.
        float[][] moved = [Pairs[0], Pairs[1], Pairs[2], [1f, 0.2f, 0f]];
        Assert.Equal(new[] { 1, 0, 3, 1 }, NeighbourAgreement.NearestNeighbours(moved));

        Assert.Equal(0.75, NeighbourAgreement.Agreement(Pairs, moved), 12);
        Assert.Equal(1.0, NeighbourAgreement.Agreement(Pairs, Pairs.Select(v => v.Select(x => 3 * x).ToArray()).ToList()), 12);
    }
}
