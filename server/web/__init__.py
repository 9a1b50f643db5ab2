"""The subscriber's browser pages (seed steps 6, 10, 11, 12 and the application status) and the
ES modules they run: key pair, PKCS#10 and PKCS#12 made in the page with WebCrypto."""
